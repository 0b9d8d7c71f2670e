import CCrypto
import Foundation

/// SHA-256 through OpenSSL's EVP interface (the same digest `sha256sum` prints on the target).
public enum SHA256Digest {
    public static func hex(_ data: Data) -> String {
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        data.withUnsafeBytes { buf in
            _ = EVP_Digest(buf.baseAddress, buf.count, &md, &len, EVP_sha256(), nil)
        }
        return md.prefix(Int(len)).map { String(format: "%02x", $0) }.joined()
    }
    public static func hex(_ text: String) -> String { hex(Data(text.utf8)) }
}
