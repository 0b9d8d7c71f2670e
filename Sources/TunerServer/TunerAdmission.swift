import Synchronization

/// Who may hold a connection before it has authenticated, and which addresses are locked out
/// for guessing the password. Shared by every event loop of a server.
///
/// Tuner slots (`max_tuners`) go to authenticated tuners only; connections that have not yet
/// authenticated are counted here, in all and per address, so a few silent or trickling
/// connections can neither take the slots of real tuners nor crowd each other out.
///
/// The per-address cap (`unauthenticated_per_address`) applies to an address that misbehaved
/// within `TunerLimits.suspectSeconds`: a connection of it missed the handshake deadline, sent a
/// wrong password, broke the protocol before authenticating, or was closed over a limit. Until
/// then an address may hold up to half of `unauthenticated`: a site's tuners behind one NAT (or a
/// load balancer without PROXY headers) reconnecting at once after a restart are hundreds of
/// honest handshakes from one address, and counting them would refuse honest tuners for their
/// number, not for anything they did. An address
/// that sends `passwordFailures` wrong passwords in a row is locked out for `lockoutSeconds`,
/// doubling with each further lockout up to an hour; the count is kept per address, not per
/// connection, so closing the socket early and guessing on 64 connections at once gains nothing.
/// An address whose last connection was closed over a limit, and whose budgets have not yet
/// refilled enough to pay for one more caption, is refused like a locked-out one.
final class TunerAdmission: Sendable {
    enum Refusal: String, Sendable {
        case lockedOut = "locked-out"
        case spent = "spent-budget"
        case unauthenticatedLimit = "unauthenticated-limit"
        case addressLimit = "address-limit"

        /// The caps answer CONN_LIMIT, as a full server does; an address refused for what it did
        /// (guessing, flooding) learns nothing.
        var reply: [UInt8] {
            switch self {
            case .lockedOut, .spent: []
            case .unauthenticatedLimit, .addressLimit: BlockCommand.connectionLimit.block()
            }
        }
    }

    private struct Failures {
        var count = 0
        var lockouts = 0
        var lockedUntil: Int64 = 0
        var lastFailure: Int64 = 0
    }

    private struct State {
        var unauthenticated = 0
        var unauthenticatedByAddress: [String: Int] = [:]
        var failures: [String: Failures] = [:]
        /// Budgets of connections closed over a caption or program limit, by address.
        var spent: [String: SessionBudgets] = [:]
        /// When each address last misbehaved (`strike`), in ms.
        var struck: [String: Int64] = [:]
    }

    /// Addresses whose failures are remembered at most; beyond it, those not locked out are forgotten.
    static let rememberedAddresses = 65_536

    private let limits: TunerLimits
    private let state = Mutex(State())

    init(limits: TunerLimits) {
        self.limits = limits
    }

    /// The refusals that depend on the address alone (locked out, budgets spent), so they can be
    /// made as the connection is accepted, before it costs a pipeline, a session or a read
    /// (`AcceptFilter`). A spent address reconnecting at once would otherwise cost, per
    /// connection, a session, a program row, a tuner row and archive files for one record.
    func refusalAtAccept(_ address: String, nowMs: Int64) -> Refusal? {
        state.withLock { Self.refusalAtAccept(address, nowMs: nowMs, in: $0) }
    }

    private static func refusalAtAccept(_ address: String, nowMs: Int64, in s: State) -> Refusal? {
        if let f = s.failures[address], f.lockedUntil > nowMs { return .lockedOut }
        if let b = s.spent[address], b.isSpent(atMilliseconds: nowMs) { return .spent }
        return nil
    }

    /// A new connection from `address`: counted as unauthenticated, or refused. Checks again what
    /// `refusalAtAccept` checked, for a lockout or limit that began since the accept.
    func connect(_ address: String, nowMs: Int64) -> Refusal? {
        state.withLock { s in
            if let refusal = Self.refusalAtAccept(address, nowMs: nowMs, in: s) { return refusal }
            if s.unauthenticated >= limits.unauthenticated { return .unauthenticatedLimit }
            let fromAddress = s.unauthenticatedByAddress[address, default: 0]
            if fromAddress >= Self.perAddressCap(address, nowMs: nowMs, limits: limits, in: s) { return .addressLimit }
            s.unauthenticated += 1
            s.unauthenticatedByAddress[address] = fromAddress + 1
            return nil
        }
    }

    /// Unauthenticated connections `address` may hold: `unauthenticated_per_address` when it
    /// misbehaved lately, else up to half of all (and never fewer).
    private static func perAddressCap(_ address: String, nowMs: Int64, limits: TunerLimits, in s: State) -> Int {
        if let last = s.struck[address], Double(nowMs - last) < TunerLimits.suspectSeconds * 1000 { return limits.unauthenticatedPerAddress }
        return max(limits.unauthenticatedPerAddress, limits.unauthenticated / 2)
    }

    /// A connection from `address` did what honest tuners do not (missed the handshake deadline,
    /// broke the protocol before authenticating, a wrong password, a limit): for
    /// `TunerLimits.suspectSeconds` the address gets only `unauthenticated_per_address`.
    func strike(_ address: String, nowMs: Int64) {
        state.withLock { Self.strike(address, nowMs: nowMs, in: &$0) }
    }

    private static func strike(_ address: String, nowMs: Int64, in s: inout State) {
        if s.struck[address] == nil && s.struck.count >= rememberedAddresses {
            s.struck = s.struck.filter { Double(nowMs - $0.value) < TunerLimits.suspectSeconds * 1000 }
            if s.struck.count >= rememberedAddresses { s.struck.removeAll() }
        }
        s.struck[address] = nowMs
    }

    /// True when `address` misbehaved within `TunerLimits.suspectSeconds` (for tests and logs).
    func isSuspect(_ address: String, nowMs: Int64) -> Bool {
        state.withLock { s in s.struck[address].map { Double(nowMs - $0) < TunerLimits.suspectSeconds * 1000 } ?? false }
    }

    /// True while `address` is locked out: an unauthenticated connection opened before the
    /// lockout began gets no more guesses either.
    func isLockedOut(_ address: String, nowMs: Int64) -> Bool {
        state.withLock { ($0.failures[address]?.lockedUntil ?? 0) > nowMs }
    }

    /// The connection authenticated, or closed before it did: it no longer counts here.
    func leaveUnauthenticated(_ address: String) {
        state.withLock { s in
            s.unauthenticated = max(0, s.unauthenticated - 1)
            let left = s.unauthenticatedByAddress[address, default: 1] - 1
            s.unauthenticatedByAddress[address] = left > 0 ? left : nil
        }
    }

    /// The password was right: the address's failures are forgotten.
    func passwordAccepted(_ address: String) {
        _ = state.withLock { $0.failures.removeValue(forKey: address) }
    }

    /// A wrong password from `address`; returns the lockout in seconds when this failure starts one.
    func passwordFailed(_ address: String, nowMs: Int64) -> Double? {
        state.withLock { s in
            if s.failures[address] == nil && s.failures.count >= Self.rememberedAddresses {
                s.failures = s.failures.filter { $0.value.lockedUntil > nowMs }
            }
            Self.strike(address, nowMs: nowMs, in: &s)
            var f = s.failures[address, default: Failures()]
            f.count += 1
            f.lastFailure = nowMs
            var lockout: Double?
            if f.count >= limits.passwordFailures {
                let seconds = min(TunerLimits.maximumLockoutSeconds, limits.lockoutSeconds * Double(1 << min(f.lockouts, 20)))
                f.lockouts += 1
                f.count = 0
                f.lockedUntil = nowMs + Int64(seconds * 1000)
                lockout = seconds
            }
            s.failures[address] = f
            return lockout
        }
    }

    /// A connection from `address` was closed over a limit: the next one from there starts with
    /// what this one left (refilled meanwhile at the sustained rate), not with a new burst.
    func limitReached(_ address: String, budgets: SessionBudgets, nowMs: Int64) {
        state.withLock { s in
            if s.spent[address] == nil && s.spent.count >= Self.rememberedAddresses {
                s.spent = s.spent.filter { !$0.value.isRefilled(atMilliseconds: nowMs) }
            }
            s.spent[address] = budgets
            Self.strike(address, nowMs: nowMs, in: &s)
        }
    }

    /// The budgets a new connection from `address` starts with: nil for full ones.
    func budgets(for address: String, nowMs: Int64) -> SessionBudgets? {
        state.withLock { s in
            guard let b = s.spent[address] else { return nil }
            if b.isRefilled(atMilliseconds: nowMs) {
                s.spent[address] = nil
                return nil
            }
            return b
        }
    }

    /// Connections counted as unauthenticated now (a metric and for tests).
    var unauthenticatedCount: Int { state.withLock { $0.unauthenticated } }
}
