import LeanFoundation
import StepKit

/// Where and as whom to call AWS: resolved once from the environment and the inventory.
public struct AWSConnection: Sendable {
    public var region: String
    public var credentials: AWSCredentials
    public var endpoints: [AWSService: String]

    public init(region: String, credentials: AWSCredentials, endpoints: [AWSService: String]) {
        self.region = region; self.credentials = credentials; self.endpoints = endpoints
    }

    /// Credentials, region and endpoints from the environment, ~/.aws files and the inventory.
    public static func resolve(settings: AWSSettings, environment: AWSEnvironment = AWSEnvironment()) throws -> AWSConnection {
        let creds = try environment.credentials(inventoryFile: settings.credentialsFile, inventoryProfile: settings.profile)
        let region = try environment.region(inventoryRegion: settings.region, inventoryProfile: settings.profile,
                                            inventoryFile: settings.credentialsFile)
        var endpoints: [AWSService: String] = [:]
        for s in AWSService.allCases { endpoints[s] = environment.endpoint(for: s, region: region, inventoryEndpoint: settings.endpoint) }
        return AWSConnection(region: region, credentials: creds, endpoints: endpoints)
    }
}

/// How hard to retry throttling and transient failures.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    public init(attempts: Int = 6, baseDelay: Double = 0.2, maxDelay: Double = 10) {
        self.attempts = attempts; self.baseDelay = baseDelay; self.maxDelay = maxDelay
    }
    /// Exponential backoff with full jitter (the AWS SDKs' choice: spreads retrying clients).
    func delay(attempt: Int) -> Double {
        let cap = min(maxDelay, baseDelay * pow(2, Double(attempt)))
        return Double.random(in: cap / 2...cap)
    }
}

/// A client for the AWS Query protocol (EC2, RDS, classic ELB, AutoScaling, STS).
///
/// An actor so the request counter is safe; each request still uses its own curl handle.
public actor AWSQueryClient {
    public let connection: AWSConnection
    let transport = CurlTransport()
    let retry: RetryPolicy
    let scrubber: SecretScrubber
    public private(set) var requestCount = 0

    public init(connection: AWSConnection, retry: RetryPolicy = RetryPolicy()) {
        self.connection = connection
        self.retry = retry
        self.scrubber = SecretScrubber(connection.credentials.secrets)
    }

    /// Calls `Action` with parameters (already flattened: "Filter.1.Name" ...). Returns the
    /// answer's root element. Throttling and 5xx are retried with backoff; API errors become
    /// `CloudError.api` with the service, action, code and message.
    public func call(_ service: AWSService, _ action: String, _ params: [(String, String)] = []) async throws -> XMLNode {
        let endpoint = connection.endpoints[service] ?? ""
        let form = FormEncoding.form([("Action", action), ("Version", service.apiVersion)] + params)
        var attempt = 0
        while true {
            requestCount += 1
            let result: Result<HTTPResponse, CurlFailure>
            do {
                result = .success(try transport.post(url: endpoint + "/", form: form, region: connection.region,
                                                     service: service.signingName, credentials: connection.credentials))
            } catch let f as CurlFailure {
                result = .failure(f)
            }
            switch result {
            case let .failure(f):
                // Connection problems are retried a little (a restarting endpoint), then reported.
                if attempt < min(2, retry.attempts - 1) { try await backoff(&attempt); continue }
                throw CloudError.transport(service: service.displayName, action: action, endpoint: endpoint, message: scrubber.scrub(f.message))
            case let .success(response):
                let root = try? XMLNode.parse(response.body)
                if (200..<300).contains(response.status), let root { return root }
                let code = root?.first("Code")?.text ?? "HTTP\(response.status)"
                let message = root?.first("Message")?.text ?? String(decoding: response.body.prefix(300), as: UTF8.self)
                let error = CloudError.api(service: service.displayName, action: action, status: response.status,
                                           code: code, message: scrubber.scrub(message))
                let transient = CloudError.throttleCodes.contains(code) || response.status >= 500 || response.status == 429
                if transient, attempt < retry.attempts - 1 { try await backoff(&attempt); continue }
                throw error
            }
        }
    }

    private func backoff(_ attempt: inout Int) async throws {
        let d = retry.delay(attempt: attempt)
        attempt += 1
        try await Task.sleep(nanoseconds: UInt64(d * 1_000_000_000))
    }

    /// Follows NextToken/Marker pagination, returning every page's root.
    public func callAll(_ service: AWSService, _ action: String, _ params: [(String, String)] = [],
                        tokenParam: String = "NextToken", tokenPath: (XMLNode) -> String?) async throws -> [XMLNode] {
        var pages: [XMLNode] = []
        var token: String?
        repeat {
            let p = params + (token.map { [(tokenParam, $0)] } ?? [])
            let page = try await call(service, action, p)
            pages.append(page)
            token = tokenPath(page).flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil && pages.count < 100
        return pages
    }

    /// Who the credentials belong to: a cheap call that checks them before any change.
    public func callerIdentity() async throws -> String {
        let r = try await call(.sts, "GetCallerIdentity")
        return r.first("Arn")?.text ?? "?"
    }
}
