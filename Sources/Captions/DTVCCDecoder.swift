/// A set of caption services (1...63), as `--service 1,2` names them.
public struct DTVCCServiceSet: Sendable, Hashable, Sequence {
    private var bits: UInt64 = 0

    public static let all = DTVCCServiceSet(1...63)

    public init<S: Sequence>(_ services: S) where S.Element == Int {
        for s in services where (1...63).contains(s) { bits |= 1 << UInt64(s) }
    }

    public func contains(_ service: Int) -> Bool { (1...63).contains(service) && bits & (1 << UInt64(service)) != 0 }
    public var isEmpty: Bool { bits == 0 }
    public func makeIterator() -> some IteratorProtocol<Int> { (1...63).lazy.filter { contains($0) }.makeIterator() }
}

/// A cue of one caption service.
public struct ServiceCue: Sendable, Hashable {
    /// The service number, 1...63.
    public var service: Int
    /// The screen: `rows` as CCExtractor's 708 srt writes them (`<font color>` and `<i>` tags),
    /// `lines` the same rows as plain text. `end` is one past the last millisecond shown.
    public var cue: Cue
}

/// Decodes the CEA-708 (DTVCC) captions of RCWT records into timed cues per service, like
/// `ccextractor --service N --out=srt`.
///
/// Feed records in order with `decode`, then call `finish()` once. Pure (no I/O); cues come out
/// when a screen is replaced. Timing follows CCExtractor's RCWT clock: a packet acts at its
/// record's timestamp plus 1001/30 ms for each earlier 708 triplet of the record.
///
/// Memory: a decoder that has seen no data for its services holds its fields only (see
/// `estimatedHeapBytes`). Services are created on their first block, windows on DefineWindow,
/// text rows on their first symbol, all within `DTVCCLimits`.
public struct DTVCCDecoder: Sendable {
    public let services: DTVCCServiceSet
    public let limits: DTVCCLimits
    /// Write the music note as CCExtractor 0.94 does (`&l`) rather than as UTF-8 `♪`.
    public let ccextractorCompatible: Bool

    private var clock = FrameClock()
    private var packets = DTVCCPacketAssembler()
    private var timing = DisplayTiming708()
    /// Services that have received a block, in order of first appearance. A service stays once
    /// created (its show time outlives its windows), but holds no storage while it has no window.
    private var decoders: [Service708] = []
    private var finished = false
    /// Symbols dropped because `limits.maximumCells` was reached.
    public private(set) var droppedSymbols = 0

    public init(services: DTVCCServiceSet, limits: DTVCCLimits = .init(), ccextractorCompatible: Bool = true) {
        self.services = services
        self.limits = limits
        self.ccextractorCompatible = ccextractorCompatible
    }

    public mutating func decode(_ record: RCWTRecord, emit: (ServiceCue) -> Void) {
        guard !finished else { return }
        clock.startRecord(at: record.timestamp)
        for t in record.triplets { triplet(t, emit) }
    }

    public mutating func decode(_ record: RCWTRecord) -> [ServiceCue] {
        var cues: [ServiceCue] = []
        decode(record) { cues.append($0) }
        return cues
    }

    /// One record as raw triplet bytes (3 per triplet), without building an `RCWTRecord`.
    public mutating func decode(timestamp: Int64, tripletBytes: UnsafeBufferPointer<UInt8>, emit: (ServiceCue) -> Void) {
        guard !finished else { return }
        clock.startRecord(at: timestamp)
        var i = 0
        let n = tripletBytes.count - tripletBytes.count % 3
        while i < n {
            triplet(CCTriplet(info: tripletBytes[i], data1: tripletBytes[i + 1], data2: tripletBytes[i + 2]), emit)
            i += 3
        }
    }

    /// End of stream: each service's screen is written, ending where CCExtractor ends a file.
    public mutating func finish(emit: (ServiceCue) -> Void) {
        guard !finished else { return }
        finished = true
        let end = clock.endOfStream
        for k in decoders.indices {
            var ctx = context(at: end, excluding: k)
            decoders[k].finish(&ctx)
            settle(k, ctx, emit)
        }
        decoders = []
    }

    public mutating func finish() -> [ServiceCue] {
        var cues: [ServiceCue] = []
        finish { cues.append($0) }
        return cues
    }

    /// Packets dropped because the next one started before they were complete.
    public var droppedPackets: Int { packets.droppedPackets }

    /// Heap bytes held beyond the struct itself: services, windows, text rows and screens, with
    /// 32 bytes of header per array (an estimate from sizes and capacities; malloc's own
    /// rounding is not counted).
    public var estimatedHeapBytes: Int {
        let header = 32
        var total = decoders.isEmpty ? 0 : header + decoders.capacity * MemoryLayout<Service708>.stride
        for s in decoders {
            total += s.windows.capacity * MemoryLayout<Window708>.stride + s.heldBytes + s.allocatedArrays * header
            total += s.allocatedCells * MemoryLayout<Cell708>.stride
            for w in s.windows { total += w.rowCount * MemoryLayout<[Cell708]>.stride }
        }
        return total
    }

    // MARK: internals

    private mutating func triplet(_ t: CCTriplet, _ emit: (ServiceCue) -> Void) {
        guard let counter = FrameClock.counter(for: t) else { return }
        if counter == .dtvcc && t.isValid {
            if let packet = packets.add(start: t.info & 0x03 == 3, t.data1, t.data2) {
                let now = clock.time(.dtvcc)
                DTVCCServiceBlocks.forEach(in: packet) { service, block in
                    guard services.contains(service) else { return }
                    run(service: service, block, at: now, emit)
                }
            }
        }
        clock.tick(counter)
    }

    private mutating func run(service: Int, _ block: ArraySlice<UInt8>, at now: Int64, _ emit: (ServiceCue) -> Void) {
        let k: Int
        if let found = decoders.firstIndex(where: { $0.number == service }) {
            k = found
        } else {
            decoders.append(Service708(number: service))
            k = decoders.count - 1
        }
        var ctx = context(at: now, excluding: k)
        decoders[k].run(block, &ctx)
        settle(k, ctx, emit)
    }

    private func context(at now: Int64, excluding k: Int) -> ServiceContext708 {
        var cells = 0, windows = 0
        for j in decoders.indices where j != k {
            cells += decoders[j].budgetUnits
            windows += decoders[j].windows.count
        }
        return ServiceContext708(now: now, timing: timing, limits: limits, cellsElsewhere: cells,
                                 windowsElsewhere: windows, ccextractorCompatible: ccextractorCompatible)
    }

    private mutating func settle(_ k: Int, _ ctx: ServiceContext708, _ emit: (ServiceCue) -> Void) {
        timing = ctx.timing
        droppedSymbols &+= ctx.droppedSymbols
        let service = decoders[k].number
        for cue in ctx.cues { emit(ServiceCue(service: service, cue: cue)) }
    }
}

extension CaptionFile {
    /// Decodes the 708 services of a whole `.bin` file, one text per service in `services` (in
    /// service order, each numbered from 1), as CCExtractor writes one file per service. A
    /// service that carried no cue gets an empty text. Like `render(bin:)`, a recording cut
    /// inside its last record is decoded up to that record; only a bad header is an error.
    public static func renderServices(bin bytes: [UInt8], services: DTVCCServiceSet, format: CaptionFormat) throws(RCWTError) -> [(service: Int, text: String)] {
        var decoder = DTVCCDecoder(services: services)
        /// One service's writer and text.
        struct Output {
            var writer: any CaptionWriter
            var bytes: [UInt8] = []
            mutating func add(_ cue: Cue) { writer.append(.cue(cue), to: &bytes) }
        }
        var outputs: [Int: Output] = [:]
        for s in services { outputs[s] = Output(writer: makeWriter(format, xds: false)) }
        let write = { (sc: ServiceCue) -> Void in outputs[sc.service]?.add(sc.cue) }
        do throws(RCWTError) {
            try RCWTFileReader(bytes: bytes).forEachRawRecord { ts, triplets in
                decoder.decode(timestamp: ts, tripletBytes: triplets, emit: write)
            }
        } catch {
            if case .badHeader = error { throw error }
        }
        decoder.finish(emit: write)
        return services.map { ($0, String(decoding: outputs[$0]!.bytes, as: UTF8.self)) }
    }
}
