import CCrypto
import LeanFoundation

/// The digests the transport needs, over OpenSSL's libcrypto.
public enum Digest {
    /// SHA-256 of `data` (32 bytes).
    public static func sha256(_ data: Data) -> Data {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = data.withUnsafeBytes { ccr_sha256($0.baseAddress, $0.count, &out) }
        precondition(ok == 1, "libcrypto SHA-256 failed")
        return Data(out)
    }

    /// Lower-case hex SHA-256 of `data`, as `sha256sum` prints it.
    public static func sha256Hex(_ data: Data) -> String {
        sha256(data).map { String(format: "%02x", $0) }.joined()
    }

    /// HMAC-SHA1 of `data` with `key` (20 bytes); what OpenSSH uses for hashed known_hosts names.
    public static func hmacSHA1(key: Data, data: Data) -> Data {
        var out = [UInt8](repeating: 0, count: 20)
        let ok = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in ccr_hmac_sha1(k.baseAddress, k.count, d.baseAddress, d.count, &out) }
        }
        precondition(ok == 1, "libcrypto HMAC-SHA1 failed")
        return Data(out)
    }
}
