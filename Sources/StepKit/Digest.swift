import CCrypto
import LeanFoundation

/// SHA-256 through OpenSSL's EVP interface (the same digest `sha256sum` prints on the target).
public enum SHA256Digest {
    public static func hex(_ data: Data) -> String {
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        data.withUnsafeBytes { buf in
            _ = EVP_Digest(buf.baseAddress, buf.count, &md, &len, EVP_sha256(), nil)
        }
        return lowerHex(md.prefix(Int(len)))
    }

    /// Lower-case hex, two digits per byte. `String(format:)` per byte went through Foundation's
    /// locale-aware formatting and showed up in a no-op run's profile (paths are hashed for
    /// probe keys and variable names).
    static func lowerHex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }
    public static func hex(_ text: String) -> String { hex(Data(text.utf8)) }
}
