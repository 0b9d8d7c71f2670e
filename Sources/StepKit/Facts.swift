import LeanFoundation

/// One read-only question asked of a host: a shell snippet whose stdout and exit status
/// answer it. The key identifies the question, so two steps asking the same thing share one
/// probe, and an applied change can invalidate exactly the answers it may have changed.
public struct FactQuery: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// A shell snippet run on the target host (batched with all others).
        case shell(String)
        /// A query run against a database from the controller.
        case sql(DatabaseEndpoint, SecretText)
    }
    /// How a shell snippet runs inside the batch script.
    public enum Isolation: Hashable, Sendable {
        /// In a subshell of its own: its variables, `cd`, `set` and `exit` stay inside it, at the
        /// cost of a fork. For snippets the engine did not write (guard conditions) or that source
        /// files (os-release).
        case subshell
        /// In the batch's own shell, no fork: for the engine's standard probes, which assign every
        /// variable before reading it and never `exit` (one that did would cut the batch short,
        /// which `FactBatch.parse` reports as a missing answer, never as a wrong one).
        case inline
        /// In a subshell started in the background before the batch's first snippet, its output
        /// (lines of text) kept in a file until its turn: for a snippet that mostly waits on a
        /// program of its own (a service's health command: `ccr health` is 11 ms of a 43 ms
        /// probe on a lab host), which then overlaps the rest of the batch. Where the file cannot
        /// be created exclusively, it runs in its turn, in a subshell.
        case background
    }
    public let key: String
    public let kind: Kind
    public let isolation: Isolation
    /// A path the snippet reads from the batch's one shared `stat` (see `FactBatch.statTable`)
    /// instead of starting `stat` itself.
    public let statPath: String?
    /// For an SQL query: a login the server refuses (wrong password, no such account) answers
    /// "no rows" instead of refusing the run. A query run as the account a step manages asks
    /// "does this password log in?" the one way that works on every MySQL and MariaDB.
    public let refusedLoginMeansNoRows: Bool
    /// The files the answer is computed from, when it is computed from nothing else: then the
    /// controller keeps the answer between runs, and the host computes it again only when one of
    /// them changed (see `AnswerSource`).
    public let source: AnswerSource?
    public init(key: String, script: String, isolation: Isolation = .subshell, statPath: String? = nil, source: AnswerSource? = nil) {
        precondition(source == nil || isolation != .background, "a cached answer is never started in the background")
        self.key = key; kind = .shell(script); self.isolation = isolation; self.statPath = statPath; refusedLoginMeansNoRows = false
        self.source = source
    }
    public init(key: String, sql: SecretText, on endpoint: DatabaseEndpoint, refusedLoginMeansNoRows: Bool = false) {
        self.key = key; kind = .sql(endpoint, sql); isolation = .subshell; statPath = nil
        self.refusedLoginMeansNoRows = refusedLoginMeansNoRows; source = nil
    }
}

/// The files a snippet's answer is a function of, on hosts where `onlyIf` holds.
///
/// WHY: `dpkg-query -W` costs 4-10 ms of every audit, on hosts whose package database has not
/// changed since the last run. The batch's shared `stat` already reads each file's identity
/// (`FileProbe.identityFormat`: device, inode, size, modification and change times in
/// nanoseconds, which any write, replacement or chmod changes); when every identity is the one the
/// controller recorded with its copy of the answer, the host prints `cached` instead of computing
/// it, and the controller uses its copy (`FactCache`). Nothing is trusted across a change: a new
/// identity, a missing file or `onlyIf` failing computes the answer as before.
public struct AnswerSource: Hashable, Sendable {
    public let paths: [String]
    /// A silent shell condition; where it fails, the answer depends on more than `paths`.
    public let onlyIf: String
    public init(paths: [String], onlyIf: String = "true") {
        precondition(!paths.isEmpty && !paths.contains { $0.contains("|") || $0.contains("\n") },
                     "an answer source must be paths the batch's stat table can hold")
        self.paths = paths; self.onlyIf = onlyIf
    }
}

/// The controller's copy of an answer computed from an `AnswerSource`, with the sources' identity
/// when it was computed.
public struct CachedAnswer: Codable, Sendable, Hashable {
    public var identity: String
    public var stdout: String
    public var status: Int32
    public init(identity: String, stdout: String, status: Int32) { self.identity = identity; self.stdout = stdout; self.status = status }
}

/// The raw answer to a `FactQuery`.
public struct FactOutput: Sendable, Hashable {
    public var stdout: String
    public var status: Int32
    public init(stdout: String, status: Int32) { self.stdout = stdout; self.status = status }
    public var lines: [Substring] { stdout.split(separator: "\n", omittingEmptySubsequences: true) }
}

/// A typed fact: a query plus the parser turning its output into a Swift value.
public struct Probe<Value: Sendable>: Sendable {
    public let query: FactQuery
    public let parse: @Sendable (FactOutput) throws -> Value
    public init(_ query: FactQuery, parse: @escaping @Sendable (FactOutput) throws -> Value) {
        self.query = query; self.parse = parse
    }
}

public enum FactError: Error, CustomStringConvertible, Sendable {
    case missing(String)
    case unparsable(key: String, detail: String)
    public var description: String {
        switch self {
        case let .missing(k): "fact \(k) was not probed (engine bug: the step must list it in `facts`)"
        case let .unparsable(k, d): "cannot understand the host's answer for \(k): \(d)"
        }
    }
}

/// The answers gathered for a host, keyed by query key.
public struct FactSet: Sendable {
    public var outputs: [String: FactOutput]
    public init(_ outputs: [String: FactOutput] = [:]) { self.outputs = outputs }
    public subscript<V>(_ probe: Probe<V>) -> V {
        get throws {
            guard let out = outputs[probe.query.key] else { throw FactError.missing(probe.query.key) }
            return try probe.parse(out)
        }
    }
    public func has(_ key: String) -> Bool { outputs[key] != nil }
    public mutating func merge(_ other: FactSet) { outputs.merge(other.outputs) { _, new in new } }
}

/// Which facts an applied step may have changed, so the engine re-probes them (apply) or
/// marks later plans as depending on it (dry-run).
public enum FactScope: Sendable, Hashable {
    case keys(Set<String>)
    /// Package installs and arbitrary commands may change anything.
    case everything

    public func overlaps(_ keys: [String]) -> Bool {
        switch self {
        case .everything: return !keys.filter { $0 != SystemProbe.key }.isEmpty
        case .keys: return keys.contains { covers($0) }
        }
    }

    /// Both scopes' keys; everything when either is.
    public func union(_ other: FactScope) -> FactScope {
        if case let .keys(a) = self, case let .keys(b) = other { return .keys(a.union(b)) }
        return .everything
    }

    /// Whether this scope includes a fact key. A key ending in `*` covers every key it prefixes.
    public func covers(_ key: String) -> Bool {
        switch self {
        case .everything: return key != SystemProbe.key
        case let .keys(mine):
            return mine.contains(key) || mine.contains { $0.hasSuffix("*") && key.hasPrefix($0.dropLast()) }
        }
    }
}

/// Builds one shell script asking many questions, and splits its output back into answers.
/// Each answer is framed by a random boundary, so file contents cannot forge a frame
/// (contents are base64-encoded anyway).
public struct FactBatch: Sendable {
    public let queries: [FactQuery]
    public let boundary: String
    /// The controller's copies of answers with an `AnswerSource`, by query key.
    public let cached: [String: CachedAnswer]

    public init(_ queries: [FactQuery], cached: [String: CachedAnswer] = [:], boundary: String = "CCRUN-" + UUID().uuidString) {
        var seen = Set<String>()
        self.queries = queries.filter { q in
            guard case .shell = q.kind else { return false }
            return seen.insert(q.key).inserted
        }
        self.cached = cached
        self.boundary = boundary
    }

    /// The answers, and those computed from an `AnswerSource` this time, for the controller to keep.
    public struct Answers: Sendable {
        public var facts: FactSet
        public var fresh: [String: CachedAnswer]
    }

    /// The shared stat table: one `stat` of every path the batch's snippets declared, its lines
    /// split by shell builtins into one variable per path (`statVariable(for:)`; unset when the
    /// path does not exist). Every program started costs the host about a millisecond, and an
    /// audit asks about dozens of files.
    static let statFields = "%F|%a|%U|%G|%s/" + FileProbe.identityFormat

    /// The shell variable holding `path`'s stat fields after the table ran.
    static func statVariable(for path: String) -> String { "ccrun_st_" + SHA256Digest.hex(path).prefix(16) }

    var statTable: String {
        var seen = Set<String>()
        let paths = queries.flatMap { [$0.statPath].compactMap { $0 } + ($0.source?.paths ?? []) }.filter { seen.insert($0).inserted }
        guard !paths.isEmpty else { return "" }
        let arms = paths.map { "\(Shell.quote($0))) \(Self.statVariable(for: $0))=${ccrun_line#*|};;" }.joined(separator: "\n")
        return """
            ccrun_out=$(stat -c '%n|\(Self.statFields)' -- \(Shell.join(paths)) 2>/dev/null)
            ccrun_ifs=$IFS; IFS='
            '; set -f
            for ccrun_line in $ccrun_out; do case ${ccrun_line%%|*} in
            \(arms)
            esac; done
            IFS=$ccrun_ifs; set +f

            """
    }

    /// The batch, its output written at once: each `printf` of a snippet would otherwise leave
    /// the host as an SSH packet of its own (about 150 for the repo-node runbook, each encrypted
    /// by sshd and read by the controller). The batch is a function, so that its `case` arms are
    /// parsed as in a script, and runs in one command substitution.
    public var script: String {
        "ccrun_batch() {\n:\n\(snippets)}\nccrun_answers=$(ccrun_batch)\nprintf '%s\\n' \"$ccrun_answers\"\n"
    }

    var snippets: String {
        var s = statTable
        for (i, q) in queries.enumerated() where q.isolation == .background {
            guard case let .shell(snippet) = q.kind else { continue }
            s += startInBackground(snippet, index: i)
        }
        for (i, q) in queries.enumerated() {
            guard case let .shell(snippet) = q.kind else { continue }
            let (open, close) = q.isolation == .inline ? ("{", "}") : ("(", ")")
            var run = "\(open)\n\(snippet)\n\(close) </dev/null 2>/dev/null\n"
            if q.isolation == .background { run = collectFromBackground(index: i, orRun: run) }
            s += "printf '%s begin \(i)\\n' \(boundary)\n"
            s += q.source.map { sourced(run, from: $0, cached: cached[q.key]) } ?? run
            s += "ccrun_rc=$?\n"
            // The background snippet's own status, which `$?` after its output cannot carry.
            if q.isolation == .background { s += "[ -z \"$ccrun_bs\" ] || { ccrun_rc=$ccrun_bs; ccrun_bs=; }\n" }
            s += "printf '\\n%s end \(i) %d\\n' \(boundary) $ccrun_rc\n"
        }
        return s
    }

    /// The file of background snippet `index`: named after the batch's random boundary, created
    /// with noclobber (O_EXCL), so a name planted in /tmp by another user is never written through,
    /// and mode 0600, so nobody else reads the answer while it waits.
    func backgroundFile(_ index: Int) -> String { "\"${TMPDIR:-/tmp}/.ccrun-probe-\(boundary)-\(index)\"" }

    func startInBackground(_ snippet: String, index i: Int) -> String {
        """
        ccrun_bp_\(i)=
        if (umask 077; set -C; true > \(backgroundFile(i))) 2>/dev/null; then
        (
        \(snippet)
        ) </dev/null >\(backgroundFile(i)) 2>/dev/null &
        ccrun_bp_\(i)=$!
        fi

        """
    }

    /// Waits for background snippet `index`, prints its output and leaves its exit status in
    /// `ccrun_bs`; `run` (the snippet in a subshell) when it could not be started.
    func collectFromBackground(index i: Int, orRun run: String) -> String {
        """
        if [ -n "$ccrun_bp_\(i)" ]; then wait "$ccrun_bp_\(i)"; ccrun_bs=$?
        while IFS= read -r ccrun_l || [ -n "$ccrun_l" ]; do printf '%s\\n' "$ccrun_l"; done < \(backgroundFile(i))
        rm -f \(backgroundFile(i))
        else ccrun_bs=
        \(run)fi

        """
    }

    /// `run` unless the source files' identities (from the stat table) are those of the cached
    /// answer; prints `BOUNDARY cached`, or `BOUNDARY source IDENTITY` before computing a cacheable one.
    func sourced(_ run: String, from source: AnswerSource, cached: CachedAnswer?) -> String {
        let variables = source.paths.map(Self.statVariable(for:))
        let present = variables.map { "[ -n \"${\($0):-}\" ]" }.joined(separator: " && ")
        let identity = variables.map { "${\($0):-}" }.joined(separator: "//")
        return """
            ccrun_src=; ccrun_hit=0
            if \(present) && { \(source.onlyIf); } >/dev/null 2>&1; then ccrun_src="\(identity)"
            if [ "$ccrun_src" = \(Shell.quote(cached?.identity ?? "")) ]; then ccrun_hit=1; printf '%s cached\\n' \(boundary); else printf '%s source %s\\n' \(boundary) "$ccrun_src"; fi
            fi
            if [ $ccrun_hit = 0 ]; then
            \(run)fi

            """
    }

    public func parse(_ output: String) throws -> FactSet { try answers(output).facts }

    public func answers(_ output: String) throws -> Answers {
        var result: [String: FactOutput] = [:]
        var fresh: [String: CachedAnswer] = [:]
        var current: Int?
        var hit = false
        var identity: String?
        var buffer: [Substring] = []
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(boundary + " ") {
                let words = line.split(separator: " ", maxSplits: 2)
                if words.count == 3, words[1] == "begin", let i = Int(words[2]) {
                    current = i; buffer = []; hit = false; identity = nil
                } else if current != nil, words.count == 2, words[1] == "cached" {
                    hit = true
                } else if current != nil, words.count == 3, words[1] == "source" {
                    identity = String(words[2])
                } else if words.count == 3, words[1] == "end", let i = current, i < queries.count {
                    let tail = words[2].split(separator: " ")
                    guard tail.count == 2, Int(tail[0]) == i, let rc = Int32(tail[1]) else { continue }
                    let key = queries[i].key
                    if hit {
                        // Printed only when the identity is the cached answer's, so the copy exists.
                        guard let copy = cached[key] else { throw FactError.unparsable(key: key, detail: "the host reused an answer this controller does not have") }
                        result[key] = FactOutput(stdout: copy.stdout, status: copy.status)
                    } else {
                        // The end marker is preceded by a newline we added.
                        var text = buffer.joined(separator: "\n")
                        if text.hasSuffix("\n") { text.removeLast() }
                        result[key] = FactOutput(stdout: text, status: rc)
                        if let identity { fresh[key] = CachedAnswer(identity: identity, stdout: text, status: rc) }
                    }
                    current = nil
                }
            } else if current != nil {
                buffer.append(line)
            }
        }
        for q in queries where result[q.key] == nil {
            throw FactError.unparsable(key: q.key, detail: "no answer in the probe output (the probe script was cut short?)")
        }
        return Answers(facts: FactSet(result), fresh: fresh)
    }
}
