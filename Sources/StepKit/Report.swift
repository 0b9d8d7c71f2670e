import LeanFoundation

public enum StepState: String, Codable, Sendable {
    case ok, changed
    case wouldChange = "would change"
    case depends, failed
    /// Not reached: an earlier step failed on this host.
    case skipped
}

/// What a run does: one enum for every report (a runbook on its hosts, a rolling run, `ccrun
/// deploy`, the AWS half). Encoded by name ("apply", "dry-run"; `ccrun aws plan` is a dry-run).
public enum RunMode: String, Codable, Sendable {
    case apply, dryRun = "dry-run"
    /// `ccrun aws destroy`: everything the blueprint describes is deleted.
    case destroy
    /// `ccrun aws rollback`: the last run's journalled changes are undone.
    case rollback
}

/// One step of a run: a runbook's step on a host, or one AWS resource of the account.
public struct StepReport: Codable, Sendable {
    public var index: Int
    public var id: String
    public var description: String
    public var state: StepState
    public var seconds: Double
    public var diff: String?
    public var actions: [String]
    public var undo: [String]
    public var message: String?
    public var irreversible: Bool
    /// Set when `state` is `failed`: why, as a kind a script can switch on.
    public var failure: Failure?
    /// When the step is applied, for engines that apply in phases (AWS: `base` by `ccrun aws
    /// apply`, `images` by `ccrun aws images`); nil for a runbook's steps.
    public var phase: String?

    public init(index: Int, id: String, description: String, state: StepState, seconds: Double, diff: String? = nil,
                actions: [String] = [], undo: [String] = [], message: String? = nil, irreversible: Bool = false,
                failure: Failure? = nil, phase: String? = nil) {
        self.index = index; self.id = id; self.description = description; self.state = state; self.seconds = seconds
        self.diff = diff; self.actions = actions; self.undo = undo; self.message = message; self.irreversible = irreversible
        self.failure = failure; self.phase = phase
    }
}

/// One target of a run: a host, or (for the AWS half) the account, `aws-REGION`.
public struct HostReport: Codable, Sendable {
    public var host: String
    public var runId: String
    /// Encoded as before ("apply", "dry-run"): a typed value, not a string to compare.
    public var mode: RunMode
    public var steps: [StepReport]
    /// What stopped the run on this host before or between its steps (unreachable, lock held...).
    public var failure: Failure?
    public var seconds: Double
    /// Script runs and transfers sent to the host (an audit of a configured host is ~2); for an
    /// AWS account, the API requests made.
    public var roundTrips: Int
    /// What happened besides the steps, e.g. a dead run's lock taken over.
    public var notes: [String] = []

    public init(host: String, runId: String, mode: RunMode, steps: [StepReport], failure: Failure?, seconds: Double,
                roundTrips: Int, notes: [String] = []) {
        self.host = host; self.runId = runId; self.mode = mode; self.steps = steps; self.failure = failure
        self.seconds = seconds; self.roundTrips = roundTrips; self.notes = notes
    }

    /// The host's failure message, if the run on it stopped before or between steps.
    public var error: String? { failure?.message }
    /// The first failure on this host: its own, else its first failed step's.
    public var firstFailure: Failure? { failure ?? steps.first { $0.state == .failed }?.failure }
    public var failed: Bool { failure != nil || steps.contains { $0.state == .failed } }
    public var pending: Bool { steps.contains { $0.state == .wouldChange || $0.state == .depends } }
    public func count(_ s: StepState) -> Int { steps.filter { $0.state == s }.count }
}

/// A `--json` document (docs/json.md): one pretty-printed JSON object with sorted keys, the same
/// encoding for every report, so that documents of different commands diff and read alike.
public protocol JSONDocument: Encodable {}

extension JSONDocument {
    public func json() throws -> String {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

/// A run: one runbook on its hosts, or one `ccrun aws` command on the account (its one "host",
/// `aws-REGION`, whose steps are the resources). `--json` prints it (docs/json.md, schema
/// docs/schemas/ccrun.run-2.json).
public struct RunReport: Codable, Sendable, JSONDocument {
    /// The document's format and version: a reader checks it before anything else. A new
    /// optional field keeps the version; a renamed, removed or retyped one makes the next.
    /// Version 2: one document for the runbooks and the AWS half (which had `ccrun.aws/1`).
    public static let schemaVersion = "ccrun.run/2"
    public var schema: String = RunReport.schemaVersion
    /// The runbook's name; for the AWS half `aws-` and the command (`aws-apply`, `aws-plan`...).
    public var runbook: String
    public var runId: String
    public var mode: RunMode
    /// True when the run continued one that stopped before finishing (`--resume`, `ccrun aws apply` after a crash).
    public var resumed: Bool
    public var hosts: [HostReport]

    public init(runbook: String, runId: String, mode: RunMode, resumed: Bool = false, hosts: [HostReport]) {
        self.runbook = runbook; self.runId = runId; self.mode = mode; self.resumed = resumed; self.hosts = hosts
    }

    /// 0 nothing to change (or applied), 2 changes pending (dry-run), 1 error:
    /// terraform plan -detailed-exitcode's convention.
    public var exitCode: Int32 {
        if hosts.contains(where: \.failed) { return 1 }
        if mode == .dryRun, hosts.contains(where: \.pending) { return 2 }
        return 0
    }
}

/// Renders reports for a terminal: one line per step, diffs indented, a summary per host.
/// Colour only when asked (the CLI asks on a TTY without NO_COLOR).
public struct ReportPrinter: Sendable {
    public var colour: Bool
    public var showDiffs: Bool
    public init(colour: Bool, showDiffs: Bool = true) { self.colour = colour; self.showDiffs = showDiffs }

    public static func wantsColour(isTTY: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        isTTY && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb"
    }

    func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }

    func colourCode(_ state: StepState) -> String {
        switch state {
        case .ok: "32"; case .changed: "33"; case .wouldChange: "36"; case .depends: "35"; case .failed: "31"; case .skipped: "90"
        }
    }

    public func line(host: String, _ r: StepReport) -> String {
        let state = r.state.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
        let ms = String(format: "%6.0f ms", r.seconds * 1000)
        // What runs, when it is one command: the description says what, this says how on this
        // host (update-rc.d, chkconfig or systemctl, as its init is).
        let how = (r.state == .changed || r.state == .wouldChange) && r.actions.count == 1 && !r.actions[0].contains("\n")
            ? ": " + r.actions[0] : ""
        var out = "\(host): \(paint(state, colourCode(r.state))) \(r.description)\(how)  \(paint(ms, "90"))"
        if let m = r.message { out += "\n    " + paint(m, r.state == .failed ? "31" : "90") }
        if showDiffs, let d = r.diff, !d.isEmpty, r.state != .ok {
            for l in d.split(separator: "\n", omittingEmptySubsequences: false).dropLast(d.hasSuffix("\n") ? 1 : 0) {
                let code = l.hasPrefix("+") ? "32" : l.hasPrefix("-") ? "31" : l.hasPrefix("@@") ? "36" : "0"
                out += "\n    " + paint(String(l), code)
            }
        }
        return out
    }

    public func summary(_ h: HostReport) -> String {
        var parts: [String] = []
        for s in [StepState.ok, .changed, .wouldChange, .depends, .failed, .skipped] where h.count(s) > 0 {
            parts.append(paint("\(h.count(s)) \(s.rawValue)", colourCode(s)))
        }
        var out = "\(h.host): " + (parts.isEmpty ? "no steps" : parts.joined(separator: ", ")) + String(format: " in %.3f s (%d round trip%@, run %@)", h.seconds, h.roundTrips, h.roundTrips == 1 ? "" : "s", h.runId)
        for n in h.notes { out += "\n\(h.host): " + paint(n, "33") }
        if let f = h.failure { out += "\n\(h.host): " + paint("error (\(f.kind.rawValue)): \(f.message)", "31") }
        return out
    }
}
