import LeanFoundation

/// Why a host's run or a step failed, as a value a script can switch on (`--json`: `failure.kind`)
/// instead of matching message text, which changes with every improvement to a message.
/// The kinds answer the operator's first question, "what now?":
public enum FailureKind: String, Codable, Sendable, CaseIterable {
    /// Nothing ran: the host, its sshd, the database or the API could not be reached. Check the
    /// network or the address; running again is safe.
    case unreachable
    /// Refused before changing anything: a host key, a login, sudo, the inventory, a runbook that
    /// changed under a resume, a step that will not touch the host as it is. Needs a decision.
    case refused
    /// Another run holds the host's lock. Wait for it, or `ccrun unlock` a dead one.
    case lockHeld
    /// The connection died during the run. `--resume` continues where it stopped.
    case linkLost
    /// A command or a wait ran past its time limit (`--command-timeout`, a service's wait).
    case timeout
    /// A command on the host (or an API call, or SQL) failed; the message has its output.
    case commandFailed
    /// A change was applied but the host still does not match: the step did not do what it said.
    case verifyFailed
    /// An error ccrun does not classify (an engine bug, a library failure): the message says what.
    case `internal`
}

/// A failure as reports carry it: its kind and the message (secrets already masked).
public struct Failure: Codable, Sendable, Equatable, CustomStringConvertible {
    public var kind: FailureKind
    public var message: String
    public init(_ kind: FailureKind, _ message: String) { self.kind = kind; self.message = message }

    /// `error` classified by its own `failureKind` (`.internal` when it has none), its text scrubbed.
    public init(_ error: any Error, scrubber: SecretScrubber) {
        self.init((error as? any FailureClassifying)?.failureKind ?? .internal, scrubber.scrub("\(error)"))
    }

    public var description: String { message }
}

/// An error that knows its `FailureKind`. Every error the engine, the transport, the SQL executor
/// and the AWS client throw conforms, so that `.internal` in a report means a bug to fix.
public protocol FailureClassifying: Error {
    var failureKind: FailureKind { get }
}

/// A change was applied and the host, probed again, still wants it (Terraform's "plan not empty
/// after apply").
public struct VerifyFailure: Error, Sendable, CustomStringConvertible, FailureClassifying {
    public let description: String
    public init(_ message: String) { description = message }
    public var failureKind: FailureKind { .verifyFailed }
}

extension StepRefusal: FailureClassifying { public var failureKind: FailureKind { .refused } }
extension RunbookChanged: FailureClassifying { public var failureKind: FailureKind { .refused } }
extension InventoryError: FailureClassifying { public var failureKind: FailureKind { .refused } }
extension SecretError: FailureClassifying { public var failureKind: FailureKind { .refused } }
extension UploadCompressionError: FailureClassifying { public var failureKind: FailureKind { .commandFailed } }

extension LockError: FailureClassifying {
    public var failureKind: FailureKind {
        switch self {
        case .heldHere, .heldElsewhere, .lost: .lockHeld
        case .notNamed: .refused
        }
    }
}

extension HostError: FailureClassifying {
    public var failureKind: FailureKind {
        switch self {
        case .commandFailed, .protocolError: .commandFailed
        case .timedOut: .timeout
        }
    }
}

extension FactError: FailureClassifying {
    public var failureKind: FailureKind {
        switch self {
        case .missing: .internal   // a step that did not list its facts
        case .unparsable: .commandFailed
        }
    }
}

extension SQLError: FailureClassifying {
    public var failureKind: FailureKind {
        switch self {
        case .connect: .unreachable
        case .accessDenied: .refused
        case .statement: .commandFailed
        case .noClient: .internal
        }
    }
}

extension RolloutError: FailureClassifying { public var failureKind: FailureKind { .refused } }
