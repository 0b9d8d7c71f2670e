import LeanFoundation
import StepKit

/// An access key pair (and optional session token). The secret parts are `Secret`s so no
/// interpolation into a log, error or report can leak them.
public struct AWSCredentials: Sendable {
    public var accessKeyId: String
    public var secretAccessKey: Secret
    public var sessionToken: Secret?
    /// Where they came from, for messages ("environment", "profile default in /path").
    public var source: String

    public init(accessKeyId: String, secretAccessKey: Secret, sessionToken: Secret? = nil, source: String) {
        self.accessKeyId = accessKeyId; self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken; self.source = source
    }

    public var secrets: [Secret] { [secretAccessKey] + (sessionToken.map { [$0] } ?? []) }
}

/// A parsed AWS INI file (`~/.aws/credentials` or `~/.aws/config`): sections of key = value.
struct AWSIniFile: Sendable {
    var sections: [String: [String: String]] = [:]

    init(text: String) {
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if let c = current, sections[c] == nil { sections[c] = [:] }
                continue
            }
            guard let c = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            sections[c, default: [:]][key] = value
        }
    }

    static func load(_ path: String) -> AWSIniFile? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return AWSIniFile(text: String(decoding: data, as: UTF8.self))
    }

    /// In the config file profiles other than default are named `[profile NAME]`.
    func configProfile(_ name: String) -> [String: String]? {
        name == "default" ? (sections["default"] ?? sections["profile default"]) : sections["profile \(name)"]
    }
}

/// Resolves credentials, region and endpoints the way the AWS CLI does, minus anything that
/// talks to the network: there is deliberately no instance-metadata or container-credentials
/// step, so a misconfigured run fails with a message instead of reaching 169.254.169.254.
public struct AWSEnvironment: Sendable {
    public var environment: [String: String]
    public var home: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                home: String = FileManager.default.homeDirectoryForCurrentUser.path) {
        self.environment = environment; self.home = home
    }

    func env(_ k: String) -> String? { environment[k].flatMap { $0.isEmpty ? nil : $0 } }

    public func profileName(inventoryProfile: String?) -> String {
        env("AWS_PROFILE") ?? inventoryProfile ?? "default"
    }

    var credentialsPath: String { env("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials" }
    var configPath: String { env("AWS_CONFIG_FILE") ?? home + "/.aws/config" }

    /// Environment keys first; then the inventory's credentials file (an AWS shared
    /// credentials file), else the standard credentials file; then the config file's profile.
    public func credentials(inventoryFile: String?, inventoryProfile: String?) throws -> AWSCredentials {
        if let id = env("AWS_ACCESS_KEY_ID"), let secret = env("AWS_SECRET_ACCESS_KEY") {
            return AWSCredentials(accessKeyId: id, secretAccessKey: Secret(label: "aws-secret-access-key", value: secret),
                                  sessionToken: env("AWS_SESSION_TOKEN").map { Secret(label: "aws-session-token", value: $0) },
                                  source: "environment (AWS_ACCESS_KEY_ID)")
        }
        let profile = profileName(inventoryProfile: inventoryProfile)
        var tried: [String] = ["environment"]
        let credFiles = [inventoryFile, env("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"].compactMap { $0 }
        for path in credFiles {
            tried.append(path)
            if let ini = AWSIniFile.load(path), let s = ini.sections[profile], let c = Self.keys(s, source: "profile \(profile) in \(path)") {
                return c
            }
        }
        tried.append(configPath)
        if let ini = AWSIniFile.load(configPath), let s = ini.configProfile(profile), let c = Self.keys(s, source: "profile \(profile) in \(configPath)") {
            return c
        }
        throw CloudError.noCredentials(profile: profile, tried: tried)
    }

    static func keys(_ s: [String: String], source: String) -> AWSCredentials? {
        guard let id = s["aws_access_key_id"], let secret = s["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty else { return nil }
        return AWSCredentials(accessKeyId: id, secretAccessKey: Secret(label: "aws-secret-access-key", value: secret),
                              sessionToken: s["aws_session_token"].map { Secret(label: "aws-session-token", value: $0) }, source: source)
    }

    /// AWS_REGION, AWS_DEFAULT_REGION, the inventory, then the profile's region in the config
    /// (or credentials) file.
    public func region(inventoryRegion: String?, inventoryProfile: String?, inventoryFile: String?) throws -> String {
        if let r = env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? inventoryRegion { return r }
        let profile = profileName(inventoryProfile: inventoryProfile)
        if let r = AWSIniFile.load(configPath)?.configProfile(profile)?["region"] { return r }
        for p in [inventoryFile, credentialsPath].compactMap({ $0 }) {
            if let r = AWSIniFile.load(p)?.sections[profile]?["region"] { return r }
        }
        throw CloudError.noRegion
    }

    /// AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING),
    /// then AWS_ENDPOINT_URL, then the inventory's endpoint, then the public regional endpoint.
    public func endpoint(for service: AWSService, region: String, inventoryEndpoint: String?) -> String {
        if let e = env("AWS_ENDPOINT_URL_" + service.endpointEnvSuffix) ?? env("AWS_ENDPOINT_URL") ?? inventoryEndpoint {
            return e.hasSuffix("/") ? String(e.dropLast()) : e
        }
        return "https://\(service.hostPrefix).\(region).amazonaws.com"
    }
}
