import LeanFoundation

/// An OpenSSH client configuration file (`~/.ssh/config`), read for the options ccrun honours:
/// `Host`, `HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`, `ConnectTimeout`,
/// `StrictHostKeyChecking`.
///
/// Resolution follows ssh_config(5): blocks are tried in file order, a block applies when one of its
/// `Host` patterns matches the alias (and none of its `!negated` ones), and for each option the first
/// value obtained wins, except `IdentityFile`, whose values accumulate in order. `Match` blocks are
/// not evaluated (treated as not matching); `Include` is not followed.
public struct SSHConfigFile: Sendable {
    /// The options resolved for one alias; nil means "not set in the file".
    public struct Options: Sendable, Equatable {
        public var hostName: String?
        public var user: String?
        public var port: Int?
        public var identityFiles: [String] = []
        public var userKnownHostsFile: String?
        public var connectTimeout: Duration?
        public var hostKeyPolicy: HostKeyPolicy?
    }

    /// A malformed line.
    public struct ParseError: Error, CustomStringConvertible, Sendable, Equatable {
        public var path: String
        public var line: Int
        public var message: String
        public var description: String { "\(path):\(line): \(message)" }
    }

    struct Block: Sendable {
        /// nil for the options before the first `Host` line (they apply to every host).
        var patterns: [String]?
        var isMatchBlock = false
        var options: [(keyword: String, value: String, line: Int)] = []
    }

    let blocks: [Block]
    let path: String

    public init(contents: String, path: String = "ssh_config") throws {
        self.path = path
        var blocks = [Block(patterns: nil)]
        for (index, rawLine) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            guard let (keyword, arguments) = Self.split(line: String(rawLine)) else { continue }
            switch keyword {
            case "host":
                guard !arguments.isEmpty else {
                    throw ParseError(path: path, line: lineNumber, message: "Host needs at least one pattern")
                }
                blocks.append(Block(patterns: arguments))
            case "match":
                blocks.append(Block(patterns: [], isMatchBlock: true))
            default:
                guard let value = arguments.first else {
                    throw ParseError(path: path, line: lineNumber, message: "\(keyword) needs a value")
                }
                if keyword == "port", Int(value).map({ (1...65535).contains($0) }) != true {
                    throw ParseError(path: path, line: lineNumber, message: "bad port '\(value)'")
                }
                if keyword == "connecttimeout", Int(value) == nil {
                    throw ParseError(path: path, line: lineNumber, message: "bad ConnectTimeout '\(value)'")
                }
                blocks[blocks.count - 1].options.append((keyword, value, lineNumber))
            }
        }
        self.blocks = blocks
    }

    /// Loads `path`; a missing file is an empty configuration.
    public static func load(path: String) throws -> SSHConfigFile {
        guard FileManager.default.fileExists(atPath: path) else { return try SSHConfigFile(contents: "", path: path) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try SSHConfigFile(contents: String(decoding: data, as: UTF8.self), path: path)
    }

    /// The options `ssh ALIAS` would use.
    public func resolve(_ alias: String) -> Options {
        var options = Options()
        var rawIdentityFiles: [String] = []
        for block in blocks where Self.block(block, matches: alias) {
            for (keyword, value, _) in block.options {
                switch keyword {
                case "hostname": if options.hostName == nil { options.hostName = value }
                case "user": if options.user == nil { options.user = value }
                case "port": if options.port == nil { options.port = Int(value) }
                case "identityfile": rawIdentityFiles.append(value)
                case "userknownhostsfile": if options.userKnownHostsFile == nil { options.userKnownHostsFile = value }
                case "connecttimeout":
                    if options.connectTimeout == nil, let seconds = Int(value) { options.connectTimeout = .seconds(seconds) }
                case "stricthostkeychecking":
                    if options.hostKeyPolicy == nil {
                        switch value.lowercased() {
                        case "accept-new", "no", "off": options.hostKeyPolicy = .acceptNew
                        default: options.hostKeyPolicy = .strict
                        }
                    }
                default: break
                }
            }
        }
        // %h in HostName is the alias itself.
        if let hostName = options.hostName {
            options.hostName = Self.expand(hostName, tokens: ["h": alias])
        }
        let remoteHost = options.hostName ?? alias
        let tokens: [Character: String] = [
            "h": remoteHost,
            "r": options.user ?? Self.localUser,
            "u": Self.localUser,
            "d": SSHTarget.homeDirectory,
            "p": String(options.port ?? 22),
        ]
        options.identityFiles = rawIdentityFiles.map { Self.expandPath(Self.expand($0, tokens: tokens)) }
        if let known = options.userKnownHostsFile {
            options.userKnownHostsFile = Self.expandPath(Self.expand(known, tokens: tokens))
        }
        return options
    }

    // MARK: helpers

    static func block(_ block: Block, matches alias: String) -> Bool {
        if block.isMatchBlock { return false }
        guard let patterns = block.patterns else { return true }
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if Glob.matches(pattern: String(pattern.dropFirst()), alias) { return false }
            } else if Glob.matches(pattern: pattern, alias) {
                matched = true
            }
        }
        return matched
    }

    /// Splits `Keyword value...` or `Keyword=value`, honouring double quotes; nil for blank/comment.
    static func split(line: String) -> (String, [String])? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        var words: [String] = []
        var current = ""
        var inQuotes = false
        var hasWord = false
        var keywordDone = false
        for ch in trimmed {
            if ch == "\"" {
                inQuotes.toggle(); hasWord = true
            } else if !inQuotes && (ch == " " || ch == "\t" || (ch == "=" && !keywordDone)) {
                if hasWord { words.append(current); current = ""; hasWord = false; keywordDone = true }
                if ch == "=" { keywordDone = true }
            } else {
                current.append(ch); hasWord = true
            }
        }
        if hasWord { words.append(current) }
        guard let keyword = words.first else { return nil }
        return (keyword.lowercased(), Array(words.dropFirst()))
    }

    static func expand(_ text: String, tokens: [Character: String]) -> String {
        var out = ""
        var percent = false
        for ch in text {
            if percent {
                if ch == "%" { out.append("%") } else if let value = tokens[ch] { out += value } else { out += "%\(ch)" }
                percent = false
            } else if ch == "%" {
                percent = true
            } else {
                out.append(ch)
            }
        }
        return out
    }

    static func expandPath(_ path: String) -> String {
        if path == "~" { return SSHTarget.homeDirectory }
        if path.hasPrefix("~/") { return SSHTarget.homeDirectory + path.dropFirst() }
        return path
    }

    static var localUser: String {
        ProcessInfo.processInfo.environment["USER"] ?? currentUserName()
    }
}
