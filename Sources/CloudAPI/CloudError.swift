import LeanFoundation
import StepKit

/// Everything that can go wrong talking to AWS, with messages that say what to do.
public enum CloudError: Error, CustomStringConvertible, LocalizedError, Sendable, FailureClassifying {
    case noCredentials(profile: String, tried: [String])
    case noRegion
    /// AWS answered with an error document.
    case api(service: String, action: String, status: Int, code: String, message: String)
    /// The request did not complete (connection refused, timeout...).
    case transport(service: String, action: String, endpoint: String, message: String)
    case malformedResponse(service: String, action: String, detail: String)
    case timedOut(what: String, seconds: Int, lastState: String)
    case inventory(String)
    /// libcurl, which ccrun loads when it first talks to AWS (not at start-up), is not there.
    case noLibcurl(String)
    case unexpected(String)

    public var description: String {
        switch self {
        case let .noCredentials(profile, tried):
            return "no AWS credentials for profile \(profile) (looked in: \(tried.joined(separator: ", "))); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or aws.credentialsFile in the inventory"
        case .noRegion:
            return "no AWS region: set aws.region in the inventory, AWS_REGION, or region in ~/.aws/config"
        case let .api(service, action, status, code, message):
            var hint = ""
            if CloudError.authCodes.contains(code) {
                hint = " (the access key or its secret was rejected: check the credentials file / AWS_* variables)"
            }
            return "\(service) \(action) failed: \(code): \(message) [HTTP \(status)]\(hint)"
        case let .transport(service, action, endpoint, message):
            return "\(service) \(action): cannot reach \(endpoint): \(message)"
        case let .malformedResponse(service, action, detail):
            return "\(service) \(action): unexpected response: \(detail)"
        case let .timedOut(what, seconds, last):
            return "timed out after \(seconds) s waiting for \(what) (last state: \(last))"
        case let .inventory(m):
            return "inventory: \(m)"
        case let .noLibcurl(why):
            return "cannot load libcurl, which the AWS commands use (\(why)): install it (Debian: apt install libcurl4)"
        case let .unexpected(m):
            return m
        }
    }
    public var errorDescription: String? { description }

    static let authCodes: Set<String> = [
        "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
        "InvalidAccessKeyId", "IncompleteSignature", "MissingAuthenticationToken",
    ]
    static let throttleCodes: Set<String> = [
        "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled", "TooManyRequestsException",
        "PriorRequestNotComplete", "SlowDown", "ServiceUnavailable", "InternalError", "InternalFailure",
    ]

    /// What the failure means to the operator (`--json`: `failure.kind`).
    public var failureKind: FailureKind {
        switch self {
        case .noCredentials, .noRegion, .inventory, .noLibcurl: .refused
        case .api: isAuthFailure ? .refused : .commandFailed
        case .transport: .unreachable
        case .malformedResponse, .unexpected: .internal
        case .timedOut: .timeout
        }
    }

    /// The AWS error code, when this is an API error.
    public var code: String? { if case let .api(_, _, _, code, _) = self { code } else { nil } }
    public var isAuthFailure: Bool { code.map { CloudError.authCodes.contains($0) } ?? false }
}
