/// What one tuner, or one address, may make `ccr serve` do. Each limit has a key in the `[limits]`
/// section of the config file; docs/ccr.md "Limits" lists them with their defaults.
///
/// The caption limits are tied to what broadcast captions can carry: CEA-608 sends one byte pair
/// per field per frame, so a real tuner sends at most 2 x 29.97 = ~60 pairs a second (the shared
/// recordings: 45 and 35 a second). A tuner may replay a recording faster than real time, so it
/// may run ahead by `burstSeconds` of broadcast at once, then at `realTimeFactor` times real time.
/// Beyond that it is not a tuner: it is closed, with a logged reason and a metric, and what it
/// sent before stays stored.
public struct TunerLimits: Sendable, Equatable {
    /// Field 1 and field 2 pairs a second that broadcast carries at most.
    public static let broadcastPairsPerSecond = 2 * 30000.0 / 1001

    /// `[limits] realtime_factor`: sustained caption rate, in multiples of broadcast's.
    public var realTimeFactor: Double = 4
    /// `[limits] burst_seconds`: broadcast time a tuner may send at once (a recording replayed
    /// at full speed: an hour of captions is ~216,000 pairs).
    public var burstSeconds: Double = 3600
    /// `[limits] lines_per_second`: caption lines (stored rows) a second of broadcast. A row
    /// needs its characters and a carriage return: stenocaptioning at 250 words a minute makes
    /// under one 32-column row a second, the shared recordings 0.35; a flood of carriage returns
    /// would make 15. Burst and sustained rate as for pairs.
    public var linesPerSecond: Double = 2
    /// `[limits] program_changes_per_minute`: new programs (XDS program-name changes) a minute,
    /// sustained; `burstSeconds / 60` of them may come at once.
    public var programChangesPerMinute: Double = 4
    /// `[limits] program_bytes`: archive bytes one program may fill (its .bin, .srt, .txt and
    /// .ttxt together). A real tuner writes ~40 MB a day.
    public var programBytes = 256 << 20
    /// `[limits] unauthenticated`: connections that have not yet authenticated, all addresses.
    public var unauthenticated = 1024
    /// `[limits] unauthenticated_per_address`: the same, from one address that misbehaved within
    /// `suspectSeconds` (missed a handshake deadline, sent a wrong password, broke the protocol
    /// before authenticating, was closed over a limit). Other addresses may hold up to half of
    /// `unauthenticated`: a site's tuners share its address and all reconnect at once after a
    /// restart, and honest handshakes must not be refused for their number (`TunerAdmission`).
    public var unauthenticatedPerAddress = 64
    /// How long an address that misbehaved is held to `unauthenticatedPerAddress`.
    public static let suspectSeconds: Double = 600
    /// `[limits] password_failures`: wrong passwords from one address before it is locked out.
    public var passwordFailures = 5
    /// `[limits] lockout_seconds`: the first lockout; each further one doubles, up to an hour.
    public var lockoutSeconds: Double = 60
    /// `[limits] store_queue`: caption lines and XDS items waiting in memory for the database;
    /// beyond it they are dropped (counted in `ccr_store_dropped_total`, logged once per episode;
    /// the archive still has them).
    public var storeQueue = 200_000

    public init() {}

    /// The longest lockout.
    public static let maximumLockoutSeconds: Double = 3600

    /// Capacity and refill rate of the caption-pair budget.
    var pairBudget: RateBudget {
        RateBudget(capacity: burstSeconds * Self.broadcastPairsPerSecond,
                   perSecond: realTimeFactor * Self.broadcastPairsPerSecond)
    }

    /// Capacity and refill rate of the caption-line budget.
    var lineBudget: RateBudget {
        RateBudget(capacity: burstSeconds * linesPerSecond, perSecond: realTimeFactor * linesPerSecond)
    }

    /// Capacity and refill rate of the program-change budget.
    var programBudget: RateBudget {
        RateBudget(capacity: max(1, burstSeconds / 60), perSecond: programChangesPerMinute / 60)
    }
}

/// A tuner's caption and program-change budgets. Kept per address for a connection closed over
/// a limit, so that reconnecting does not buy a new burst.
struct SessionBudgets: Sendable, Equatable {
    var pairs: RateBudget
    var lines: RateBudget
    var programs: RateBudget

    init(_ limits: TunerLimits) {
        pairs = limits.pairBudget
        lines = limits.lineBudget
        programs = limits.programBudget
    }

    /// True once all would be full again at `nowMs` (nothing left to remember).
    func isRefilled(atMilliseconds nowMs: Int64) -> Bool {
        pairs.isFull(atMilliseconds: nowMs) && lines.isFull(atMilliseconds: nowMs) && programs.isFull(atMilliseconds: nowMs)
    }

    /// True while one budget cannot pay for a single pair, line or program change at `nowMs`:
    /// a connection starting from these budgets would be closed at its first caption (or its
    /// first program change), after it had cost a session, a program row and archive files.
    func isSpent(atMilliseconds nowMs: Int64) -> Bool {
        pairs.balance(atMilliseconds: nowMs) < 1 || lines.balance(atMilliseconds: nowMs) < 1 || programs.balance(atMilliseconds: nowMs) < 1
    }
}

/// A token bucket: `capacity` to start with, refilled at `perSecond`, never above `capacity`.
struct RateBudget: Sendable, Equatable {
    let capacity: Double
    let perSecond: Double
    private var tokens: Double
    private var refilledAt: Int64?

    init(capacity: Double, perSecond: Double) {
        self.capacity = capacity
        self.perSecond = perSecond
        tokens = capacity
    }

    /// Takes `amount` at `nowMs` (monotonic or wall milliseconds); false when the budget is spent.
    mutating func spend(_ amount: Double, atMilliseconds nowMs: Int64) -> Bool {
        if let last = refilledAt, nowMs > last {
            tokens = min(capacity, tokens + Double(nowMs - last) / 1000 * perSecond)
        }
        refilledAt = nowMs
        tokens -= amount
        return tokens >= 0
    }

    func isFull(atMilliseconds nowMs: Int64) -> Bool {
        balance(atMilliseconds: nowMs) >= capacity
    }

    /// What could be spent at `nowMs` (negative while an overdraft is being paid back), without spending.
    func balance(atMilliseconds nowMs: Int64) -> Double {
        guard let last = refilledAt else { return capacity }
        return min(capacity, tokens + Double(max(0, nowMs - last)) / 1000 * perSecond)
    }
}
