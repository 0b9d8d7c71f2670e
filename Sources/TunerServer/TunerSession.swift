import Captions
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ServerFiles

/// What a session tells the code around it (the NIO handler, the store).
public enum SessionEvent: Sendable {
    /// Bytes to send back to the tuner (the PING answer).
    case reply([UInt8])
    /// The password was wrong: answer 0x02, wait, close.
    case wrongPassword
    /// The tuner described itself (CC_DESC).
    case described(String)
    /// A decoded caption cue, in the program `programName` (nil while unnamed).
    case cue(Cue, programName: String?)
    /// A CEA-708 (DTVCC) service's cue, already in the program's `.svcN.srt`.
    case serviceCue(ServiceCue)
    /// An XDS packet (program name, network, ...).
    case xds(XDSEvent)
    /// The tuner sent a valid BIN_HEADER: captions follow.
    case streamStarted
    /// A program began (the first one, or after a split); `name` is nil until XDS names it.
    /// Wall-clock start in ms since the epoch.
    case programStarted(name: String?, at: Int64)
    /// The current program got its first name.
    case programNamed(String)
    /// The current program ended (split, or the connection closed).
    case programEnded(at: Int64)
    /// Archive files could not be written (the session keeps going; the store still gets lines).
    case archiveFailed(ArchiveError)
}

/// Why a session ended a connection: logged, and counted in the metrics by `kind`.
public struct SessionClose: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case framing, protocolOrder, badHeader, badRecord, password, idle, limit }
    public let kind: Kind
    public let reason: String
    public var description: String { reason }
}

/// Settings one tuner's session needs.
public struct SessionSettings: Sendable {
    /// The tuners' password; nil accepts any PASSWORD block (or none).
    public var password: String?
    public var layout: ArchiveLayout
    /// Bytes buffered for one archive file before it is written without waiting for the timer.
    public var flushThreshold: Int
    /// Pending archive bytes kept when writes keep failing; beyond it, they are dropped.
    public var maxPendingArchiveBytes: Int
    /// Where archive files are written (the server: its `ArchiveWriter` threads).
    public var archiveIO: any ArchiveIO
    /// Caption rate, program changes and program size a tuner may reach before it is closed.
    public var limits: TunerLimits

    public init(password: String?, layout: ArchiveLayout, flushThreshold: Int = 4096, maxPendingArchiveBytes: Int = 256 * 1024,
                archiveIO: any ArchiveIO = DirectArchiveIO(), limits: TunerLimits = TunerLimits()) {
        self.limits = limits
        self.password = password
        self.layout = layout
        self.flushThreshold = flushThreshold
        self.maxPendingArchiveBytes = maxPendingArchiveBytes
        self.archiveIO = archiveIO
    }
}

/// One tuner's connection, without any networking: bytes in, events out.
///
/// framer -> (PASSWORD/CC_DESC/BIN_HEADER checks) -> record assembler -> decoder -> program
/// tracker -> archive writers. Kept as a value with everything allocated on demand, because
/// 10,000 of them live at once (ccr-memory.md).
public struct TunerSession: Sendable {
    private enum Phase: Sendable { case start, authenticated, streaming }

    /// The tuner's folder name in the archive (settable until its first program starts).
    public private(set) var tuner: String
    private let settings: SessionSettings
    private var framer = BlockFramer()
    private var phase: Phase = .start
    /// Data of the small block being read (PASSWORD, CC_DESC, BIN_HEADER); empty otherwise.
    private var smallBlock: [UInt8] = []
    private var assembler = RCWTRecordAssembler(maxTriplets: 1024)
    private var decoder: CaptionDecoder?
    /// CEA-708 (DTVCC) services, archived as `.svcN.srt` beside the 608 files; windows and
    /// services are allocated on first use (an idle one is a few hundred bytes).
    private var dtvcc: DTVCCDecoder?
    private var tracker = ProgramTracker()
    private var program: ProgramRecording?
    /// Wall-clock milliseconds since the epoch (a parameter so tests can pin program start times).
    private var now: @Sendable () -> Int64
    public private(set) var description: String = ""
    public private(set) var recordCount = 0
    /// Blocks read whole so far: a connection whose count stands still while it is inside a
    /// block is trickling (`[server] block_timeout`).
    public private(set) var blockCount = 0
    public private(set) var bytesReceived = 0
    /// Wall-clock ms of the bytes being received (one clock read per `receive`, not per record).
    private var receivedAt: Int64 = 0
    /// Caption pairs, lines and program changes left; a connection from an address whose last one
    /// was closed over a limit starts from what that one left (`TunerAdmission.budgets(for:)`).
    var budgets: SessionBudgets
    /// Set when a limit is reached: records after it are not processed, and `receive` throws it.
    private var overLimit: SessionClose?
    /// The next free sequence per file stem, so a tuner that alternates program names does not
    /// probe the disk for every earlier file of the same name (quadratic otherwise).
    private var nextSequence: [String: Int] = [:]
    /// Events of the record being decoded, kept between records for their capacity: the
    /// decoders write into it in place (`process`), and most records make none.
    private var decoded: [CaptionEvent] = []
    private var decodedService: [ServiceCue] = []

    public init(tuner: String, settings: SessionSettings, clock: @escaping @Sendable () -> Int64 = wallClockMilliseconds) {
        self.tuner = tuner
        self.settings = settings
        self.now = clock
        budgets = SessionBudgets(settings.limits)
    }

    /// Names the tuner's archive folder after its address until a description names it
    /// (`ArchiveLayout.tunerFolder`); effective only before the first program starts.
    public mutating func setAddress(_ address: String) {
        if program == nil, programSlug(description) == "unnamed" { tuner = ArchiveLayout.tunerFolder(description: nil, address: address) }
    }

    /// True once the tuner proved it knows the password (or none is required and it spoke).
    public var isAuthenticated: Bool { phase != .start }
    public var isAtBlockBoundary: Bool { framer.isAtBlockBoundary }
    public var positionDescription: String { framer.positionDescription }
    public var currentProgramName: String? { program?.name }
    /// Base path (without extension) of the program being recorded, if any.
    public var currentArchiveBase: String? { program?.files.basePath }
    public var pendingArchiveBytes: Int { program?.pendingByteCount ?? 0 }
    /// True when a file's buffer is full (`flushFull` writes it before the timer's `flush`).
    public var flushIsDue: Bool { (program?.files.largestPendingByteCount ?? 0) >= settings.flushThreshold }

    /// Feeds the bytes of one read as the server has them (a socket buffer's readable bytes).
    /// Not generic, so that this path is compiled, specialized, in this module whoever calls it:
    /// a generic call from another module (a benchmark) ran the unspecialized framer, whose
    /// element reads allocated.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        try receiveBytes(bytes, emit)
    }

    /// Feeds received bytes. Throws `SessionClose` when the connection must end.
    public mutating func receive<C: Collection<UInt8>>(_ bytes: C, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        try receiveBytes(bytes, emit)
    }

    private mutating func receiveBytes<C: Collection<UInt8>>(_ bytes: C, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        bytesReceived += bytes.count
        receivedAt = now()
        // Spent before (a connection from an address whose last one was closed over a limit): not one more record.
        if overLimit == nil, !budgets.pairs.spend(0, atMilliseconds: receivedAt) { overLimit = pairLimitClose }
        if let overLimit { throw overLimit }
        // The framer is a few bytes of plain state: work on a copy so the callback may mutate self.
        var working = framer
        defer { framer = working }
        do {
            try working.feed(bytes) { event in try self.handle(event, emit) }
        } catch let error as SessionClose {
            throw error
        } catch let error as FramingError {
            throw SessionClose(kind: .framing, reason: error.description)
        } catch {
            throw SessionClose(kind: .framing, reason: "\(error)")
        }
        if let overLimit { throw overLimit }
    }

    private var pairLimitClose: SessionClose {
        let limits = settings.limits
        return SessionClose(kind: .limit, reason: """
            caption data faster than broadcast can carry: over \(Int(limits.burstSeconds)) s of captions at once, \
            then over \(formatted(limits.realTimeFactor))x real time ([limits] burst_seconds, realtime_factor)
            """)
    }

    private mutating func handle<B: Collection<UInt8>>(_ event: FrameEvent<B>, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        switch event {
        case .begin(let command, _):
            if phase == .start, command != .password, settings.password != nil {
                throw SessionClose(kind: .password, reason: "\(command) block before PASSWORD on a server that requires one")
            }
            if command == .binData, phase != .streaming {
                throw SessionClose(kind: .protocolOrder, reason: "BIN_DATA before BIN_HEADER: the stream has no RCWT header")
            }
            smallBlock.removeAll()
        case .payload(let command, let bytes):
            switch command {
            case .binData:
                try receiveRecords(bytes, emit)
            case .password, .ccDescription, .binHeader:
                smallBlock.append(contentsOf: bytes)
            default:
                break // EPG_DATA and PING data are not used.
            }
        case .end(let command):
            blockCount += 1
            try finishBlock(command, emit)
        }
    }

    private mutating func finishBlock(_ command: BlockCommand, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        defer { smallBlock = [] }
        switch command {
        case .password:
            if let expected = settings.password, !constantTimeEqual(smallBlock, Array(expected.utf8)) {
                emit(.wrongPassword)
                throw SessionClose(kind: .password, reason: "wrong password")
            }
            if phase == .start { phase = .authenticated }
        case .ccDescription:
            if phase == .start { phase = .authenticated }
            description = String(decoding: smallBlock.prefix(256), as: UTF8.self)
            // A described tuner's archive folder is named after its description (a person
            // browsing looks for "wabc-hd", not for a connection number).
            if program == nil, programSlug(description) != "unnamed" { tuner = programSlug(description) }
            emit(.described(description))
        case .binHeader:
            do {
                try RCWTRecordAssembler.validateHeader(smallBlock)
            } catch {
                throw SessionClose(kind: .badHeader, reason: "BIN_HEADER: \(error)")
            }
            if phase != .streaming {
                phase = .streaming
                decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
                dtvcc = DTVCCDecoder(services: .all)
                emit(.streamStarted)
            }
        case .ping:
            if phase == .start { phase = .authenticated }
            emit(.reply([BlockCommand.ping.rawValue]))
        case .epgData:
            if phase == .start { phase = .authenticated }
        default:
            break
        }
    }

    private mutating func receiveRecords<B: Collection<UInt8>>(_ bytes: B, _ emit: (SessionEvent) -> Void) throws(SessionClose) {
        // Move the assembler out (not copy: its partial-record buffer must stay uniquely owned)
        // so the callback may mutate self.
        var working = assembler
        assembler = RCWTRecordAssembler(maxTriplets: 0)
        defer { assembler = working }
        var failure: RCWTError?
        let append = { (buf: UnsafeBufferPointer<UInt8>) in
            do throws(RCWTError) {
                try working.appendRecordBuffer(buf) { (record: RCWTRecordBytes) throws(RCWTError) in self.process(record, emit) }
            } catch {
                failure = error
            }
        }
        // The server's bytes are a slice of its read buffer: contiguous, passed on as they are.
        if bytes.withContiguousStorageIfAvailable(append) == nil { Array(bytes).withUnsafeBufferPointer(append) }
        if let failure { throw SessionClose(kind: .badRecord, reason: "BIN_DATA: \(failure)") }
    }

    private mutating func process(_ record: RCWTRecordBytes, _ emit: (SessionEvent) -> Void) {
        guard overLimit == nil else { return }
        // Each record is paid for before it is used: past the limit nothing more is decoded,
        // archived or stored.
        guard budgets.pairs.spend(Double(Self.pairCount(record.tripletBytes)), atMilliseconds: receivedAt) else {
            overLimit = pairLimitClose
            return
        }
        recordCount += 1
        if program == nil { beginProgram(name: tracker.currentName, emit) }
        if program!.bytesAppended > settings.limits.programBytes {
            overLimit = SessionClose(kind: .limit, reason: "program archive over \(settings.limits.programBytes) bytes ([limits] program_bytes)")
            return
        }
        program!.record(record)
        guard decoder != nil else { return }
        // Decoded in place, into buffers moved out of self (a pointer each): the decoders are
        // hundreds of bytes of inline state, and moving them out and back for every record (so
        // that the callback could mutate self) copied them twice a record.
        let (timestamp, triplets) = (record.timestamp, record.tripletBytes)
        var events: [CaptionEvent] = [], serviceCues: [ServiceCue] = []
        swap(&events, &decoded)
        swap(&serviceCues, &decodedService)
        decoder!.decode(timestamp: timestamp, tripletBytes: triplets) { events.append($0) }
        dtvcc?.decode(timestamp: timestamp, tripletBytes: triplets) { serviceCues.append($0) }
        for event in events { deliver(event, emit) }
        for cue in serviceCues { deliver(cue, emit) }
        events.removeAll(keepingCapacity: true)
        serviceCues.removeAll(keepingCapacity: true)
        decoded = events
        decodedService = serviceCues
    }

    private mutating func deliver(_ event: CaptionEvent, _ emit: (SessionEvent) -> Void) {
        if case .xds(let xds) = event, let name = xds.programName {
            switch tracker.observe(programName: name) {
            case .unchanged:
                break
            case .nameCurrent(let n):
                do throws(ArchiveError) {
                    let (layout, io) = (settings.layout, settings.archiveIO)
                    try program?.name(n, layout: layout, tuner: tuner, io: io, nextSequence: &nextSequence)
                } catch {
                    emit(.archiveFailed(error))
                }
                emit(.programNamed(n))
            case .startNew(let n):
                if !budgets.programs.spend(1, atMilliseconds: receivedAt) {
                    let limits = settings.limits
                    overLimit = overLimit ?? SessionClose(kind: .limit, reason: """
                        program changes faster than \(formatted(limits.programChangesPerMinute)) a minute \
                        ([limits] program_changes_per_minute)
                        """)
                }
                closeProgram(emit)
                beginProgram(name: n, emit)
            }
        }
        if case .cue(let cue) = event, !spendLine(cue) { return }
        if program == nil { beginProgram(name: tracker.currentName, emit) }
        program!.write(event)
        switch event {
        case .cue(let cue): emit(.cue(cue, programName: program?.name))
        case .xds(let xds): emit(.xds(xds))
        }
    }

    /// A CEA-708 service's cue: to the program's `.svcN.srt` and, as a stored line, to the store.
    private mutating func deliver(_ serviceCue: ServiceCue, _ emit: (SessionEvent) -> Void) {
        guard program != nil, spendLine(serviceCue.cue) else { return }
        program!.write(serviceCue)
        emit(.serviceCue(serviceCue))
    }

    /// Pays for a cue that becomes a stored line (608 or 708 alike: the budget bounds the rows a
    /// tuner makes). False, with the session marked over its limit, when the budget is spent:
    /// the cue is then neither archived nor stored.
    private mutating func spendLine(_ cue: Cue) -> Bool {
        guard !cue.lines.isEmpty, !budgets.lines.spend(1, atMilliseconds: receivedAt) else { return true }
        let limits = settings.limits
        overLimit = overLimit ?? SessionClose(kind: .limit, reason: """
            caption lines faster than broadcast makes them: over \(formatted(limits.linesPerSecond)) a second of broadcast \
            ([limits] lines_per_second, burst_seconds, realtime_factor)
            """)
        return false
    }

    private mutating func beginProgram(name: String?, _ emit: (SessionEvent) -> Void) {
        let at = now()
        program = ProgramRecording(layout: settings.layout, tuner: tuner, name: name,
                                   startedAt: UTCTime(secondsSinceEpoch: Int(at / 1000)), io: settings.archiveIO,
                                   nextSequence: &nextSequence)
        emit(.programStarted(name: name, at: at))
    }

    /// The CEA-608 pairs (`CCTriplet.isCEA608Pair`) in a record's triplet bytes: what the
    /// caption budget counts.
    static func pairCount(_ triplets: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0, i = 0
        let n = triplets.count - triplets.count % 3
        while i < n {
            if CCTriplet(info: triplets[i], data1: triplets[i + 1], data2: triplets[i + 2]).isCEA608Pair { count += 1 }
            i += 3
        }
        return count
    }

    private mutating func closeProgram(_ emit: (SessionEvent) -> Void) {
        guard var current = program.take() else { return }
        current.finishWriters()
        do throws(ArchiveError) { try current.flush(to: settings.archiveIO) } catch { emit(.archiveFailed(error)) }
        current.release(io: settings.archiveIO)
        emit(.programEnded(at: now()))
    }

    /// Writes the archive files whose buffers are full (when `flushIsDue`).
    public mutating func flushFull(_ emit: (SessionEvent) -> Void) {
        flush(minimumBytes: settings.flushThreshold, emit)
    }

    /// Writes all buffered archive data (called on the server's timer).
    public mutating func flush(_ emit: (SessionEvent) -> Void) {
        flush(minimumBytes: 1, emit)
    }

    private mutating func flush(minimumBytes: Int, _ emit: (SessionEvent) -> Void) {
        guard program != nil else { return }
        // A writer that is behind (a slow disk) gets nothing new until it catches up: the data
        // waits here, in whole cues and records, up to the same bound as failed writes.
        if settings.archiveIO.isBehind && program!.pendingByteCount <= settings.maxPendingArchiveBytes { return }
        do throws(ArchiveError) {
            try program!.flush(minimumBytes: minimumBytes, to: settings.archiveIO)
        } catch {
            emit(.archiveFailed(error))
            if program!.pendingByteCount > settings.maxPendingArchiveBytes {
                // The disk has been failing for a while: keep the process alive, drop this backlog.
                let (name, started) = (program!.name, program!.startedAt)
                program!.release(io: settings.archiveIO)
                program = ProgramRecording(layout: settings.layout, tuner: tuner, name: name, startedAt: started, io: settings.archiveIO,
                                           nextSequence: &nextSequence)
            }
        }
    }

    /// End of the connection: the decoder's last cue, the writers' trailers, a final flush.
    public mutating func finish(_ emit: (SessionEvent) -> Void) {
        if var decoder = decoder.take() {
            let events = decoder.finish()
            for event in events { deliver(event, emit) }
        }
        if var dtvcc = dtvcc.take() {
            for cue in dtvcc.finish() { deliver(cue, emit) }
        }
        closeProgram(emit)
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
@Sendable public func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Compares secrets in time that depends only on their lengths, so that a tuner cannot learn
/// the password byte by byte from response times.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff: UInt = a.count == b.count ? 0 : 1
    let n = max(a.count, b.count)
    for i in 0..<n {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        diff |= UInt(x ^ y)
    }
    return diff == 0
}

/// A number for a log line: no fraction when it is whole.
func formatted(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
}
