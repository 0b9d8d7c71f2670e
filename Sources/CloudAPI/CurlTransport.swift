import CLibCurl
import LeanFoundation
import StepKit

/// One HTTP answer.
struct HTTPResponse: Sendable {
    var status: Int
    var body: Data
}

/// Collects a response body from libcurl's write callback.
private final class BodyBuffer {
    var data = Data()
}

/// POSTs a form to one configured endpoint, signed by libcurl's own SigV4 (`CURLOPT_AWS_SIGV4`).
///
/// Every request uses a fresh easy handle owned by the calling function, so no curl handle is
/// ever shared between tasks. Proxies from the environment are ignored and redirects are not
/// followed: the only address ever contacted is the configured endpoint. Verbose output is off,
/// so the Authorization header and the secret never reach stderr.
struct CurlTransport: Sendable {
    var timeoutSeconds: Int = 60
    var connectTimeoutSeconds: Int = 10

    /// Loads libcurl (see CLibCurl.h: not at start-up) and initialises it, once; nil when
    /// loaded, else why it could not be.
    static let loadFailure: String? = {
        if let failure = ccrun_curl_load() { return String(cString: failure) }
        _ = ccrun_curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return nil
    }()

    func post(url: String, form: String, region: String, service: String, credentials: AWSCredentials) throws -> HTTPResponse {
        if let failure = Self.loadFailure { throw CloudError.noLibcurl(failure) }
        guard let h = ccrun_curl_easy_init() else { throw CloudError.unexpected("curl_easy_init failed") }
        defer { ccrun_curl_easy_cleanup(h) }

        var headers: UnsafeMutablePointer<curl_slist>? = nil
        headers = ccrun_curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded; charset=utf-8")
        headers = ccrun_curl_slist_append(headers, "Accept: text/xml")
        if let token = credentials.sessionToken {
            headers = ccrun_curl_slist_append(headers, "X-Amz-Security-Token: \(token.reveal())")
        }
        defer { ccrun_curl_slist_free_all(headers) }

        let buffer = BodyBuffer()
        let unmanaged = Unmanaged.passRetained(buffer)
        defer { unmanaged.release() }

        var rc = CURLE_OK
        func check(_ c: CURLcode) { if rc == CURLE_OK, c != CURLE_OK { rc = c } }
        check(ccrun_curl_setopt_string(h, CURLOPT_URL, url))
        check(ccrun_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(ccrun_curl_setopt_string(h, CURLOPT_PROXY, ""))
        check(ccrun_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        check(ccrun_curl_setopt_long(h, CURLOPT_VERBOSE, 0))
        check(ccrun_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        check(ccrun_curl_setopt_long(h, CURLOPT_TIMEOUT, timeoutSeconds))
        check(ccrun_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT, connectTimeoutSeconds))
        check(ccrun_curl_setopt_long(h, CURLOPT_POST, 1))
        check(ccrun_curl_setopt_string(h, CURLOPT_COPYPOSTFIELDS, form))
        check(ccrun_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headers))
        check(ccrun_curl_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:\(region):\(service)"))
        check(ccrun_curl_setopt_string(h, CURLOPT_USERNAME, credentials.accessKeyId))
        check(ccrun_curl_setopt_string(h, CURLOPT_PASSWORD, credentials.secretAccessKey.reveal()))
        check(ccrun_curl_setopt_pointer(h, CURLOPT_WRITEDATA, unmanaged.toOpaque()))
        check(ccrun_curl_setopt_write_callback(h) { ptr, size, count, user in
            guard let ptr, let user else { return 0 }
            let n = size * count
            let buf = Unmanaged<BodyBuffer>.fromOpaque(user).takeUnretainedValue()
            ptr.withMemoryRebound(to: UInt8.self, capacity: n) { buf.data.append($0, count: n) }
            return n
        })
        guard rc == CURLE_OK else { throw CloudError.unexpected("curl setup failed: \(String(cString: ccrun_curl_easy_strerror(rc)))") }

        let performed = ccrun_curl_easy_perform(h)
        guard performed == CURLE_OK else {
            throw CurlFailure(message: String(cString: ccrun_curl_easy_strerror(performed)))
        }
        var status = 0
        _ = ccrun_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, body: buffer.data)
    }
}

/// A request that did not get an HTTP answer.
struct CurlFailure: Error { var message: String }

/// `application/x-www-form-urlencoded` as the AWS SDKs write it: RFC 3986 unreserved characters
/// stay, space is `+`, everything else %XX. AWS hashes the body bytes as sent; moto re-encodes
/// the parsed form before checking the signature, so matching the SDKs' bytes matters there.
enum FormEncoding {
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~ ")
    static func encode(_ s: String) -> String {
        (s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s).replacingOccurrences(of: " ", with: "+")
    }
    static func form(_ params: [(String, String)]) -> String {
        params.map { encode($0.0) + "=" + encode($0.1) }.joined(separator: "&")
    }
}
