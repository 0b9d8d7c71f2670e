/// Extended Data Services (CEA-608 field 2): packets assembled across interleaved classes,
/// checked by checksum, and turned into typed content plus CCExtractor's ttxt wording.
struct XDSDecoder: Sendable {
    /// CCExtractor keeps 9 packet buffers; more interleaved packets than that are dropped.
    private static let bufferCount = 9
    /// Bytes kept per packet: 34 data bytes plus the end code.
    private static let packetSize = 36
    /// Packet storage, allocated on the first XDS byte: `bufferCount` slots of `packetSize`.
    private var storage: [UInt8] = []
    private var used: [UInt8] = []
    private var classes: [Int8] = []
    private var types: [Int16] = []
    private var inUse: UInt16 = 0
    private var current = -1
    /// The last program name of the current program (class "current").
    private(set) var currentProgramName: String?

    init() {}

    @inline(__always) private func isInUse(_ i: Int) -> Bool { inUse & (1 << UInt16(i)) != 0 }

    private mutating func reset(_ i: Int) {
        inUse &= ~(1 << UInt16(i))
        classes[i] = -1
        types[i] = -1
        used[i] = 0
    }

    /// Start or continue code (hi 0x01...0x0E) or data pair while in XDS mode.
    mutating func bytes(_ hi: UInt8, _ lo: UInt8) {
        if storage.isEmpty {
            storage = [UInt8](repeating: 0, count: Self.bufferCount * Self.packetSize)
            used = [UInt8](repeating: 0, count: Self.bufferCount)
            classes = [Int8](repeating: -1, count: Self.bufferCount)
            types = [Int16](repeating: -1, count: Self.bufferCount)
        }
        if hi >= 0x01 && hi <= 0x0F {
            let cls = Int8((hi - 1) / 2)
            let isNew = hi % 2 == 1
            var matching = -1, firstFree = -1
            for i in 0..<Self.bufferCount {
                if isInUse(i) && classes[i] == cls && types[i] == Int16(lo) { matching = i; break }
                if firstFree == -1 && !isInUse(i) { firstFree = i }
            }
            if matching == -1 && firstFree == -1 { current = -1; return }
            current = matching != -1 ? matching : firstFree
            if isNew || !isInUse(current) {
                // Whatever was there belonged to an interrupted packet.
                classes[current] = cls
                types[current] = Int16(lo)
                used[current] = 0
                inUse |= 1 << UInt16(current)
            }
            if !isNew { return } // continue codes are not part of the packet
        } else {
            if (hi > 0 && hi <= 0x1F) || (lo > 0 && lo <= 0x1F) { return } // illegal data
        }
        guard current >= 0 else { return }
        let u = Int(used[current])
        if u <= 32 {
            storage[current * Self.packetSize + u] = hi
            storage[current * Self.packetSize + u + 1] = lo
            used[current] = UInt8(u + 2)
        }
    }

    /// End code (0x0F, checksum): returns the ttxt lines and content when the packet is good.
    mutating func end(checksum: UInt8) -> (content: XDSContent, lines: [String])? {
        guard current >= 0, !storage.isEmpty, isInUse(current) else { return nil }
        let index = current
        defer { reset(index) }
        let base = index * Self.packetSize
        var payload = Array(storage[base..<(base + Int(used[index]))])
        var cls = Int(classes[index])
        guard payload.count >= 2 else { return nil }
        let type = Int(payload[1])
        payload.append(0x0F)
        var cs = 0
        for b in payload { cs = (cs + Int(b)) & 0x7F }
        cs = (128 - cs) & 0x7F
        guard cs == Int(checksum), payload.count >= 3 else { return nil }
        if type & 0x40 != 0 { cls = 0x40 } // out-of-band
        switch cls {
        case 0: return currentClass(type: type, payload: payload)
        case 2: return channelClass(type: type, payload: payload)
        case 6: // private data: CCExtractor prints only the last data byte (sic)
            guard payload.count - 1 > 2 else { return nil }
            let b = payload[payload.count - 2]
            return (.other(packetClass: UInt8(cls), type: UInt8(type)), [Self.hex2(b) + " "])
        default: // future (not printed), misc (time of day etc.: not printed), out-of-band
            return nil
        }
    }

    /// Text bytes 2 ..< count-1, cut at the first NUL, as Latin-1 characters.
    /// Built as UTF-8 bytes (Latin-1 above 0x7F takes two): XDS packets repeat every few
    /// seconds on every tuner, and a String grown a scalar at a time cost more than the rest
    /// of the packet.
    private static func text(_ payload: [UInt8]) -> String {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(payload.count + 8)
        var i = 2
        while i < payload.count - 1 {
            let b = payload[i]
            if b == 0 { break }
            UTF8.encode(Unicode.Scalar(b)) { utf8.append($0) }
            i += 1
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    private static func two(_ v: Int) -> String {
        guard (0..<100).contains(v) else { return v < 10 ? "0\(v)" : "\(v)" }
        let digits = [UInt8(ascii: "0") + UInt8(v / 10), UInt8(ascii: "0") + UInt8(v % 10)]
        return String(decoding: digits, as: UTF8.self)
    }
    private static func hex2(_ b: UInt8) -> String {
        let h = String(b, radix: 16, uppercase: true)
        return h.count == 1 ? "0" + h : h
    }

    private mutating func currentClass(type: Int, payload: [UInt8]) -> (XDSContent, [String])? {
        let n = payload.count
        switch type {
        case 1: // PIN / start time
            guard n >= 7 else { return nil }
            let min = Int(payload[2] & 0x3F), hour = Int(payload[3] & 0x1F)
            let date = Int(payload[4] & 0x1F), month = Int(payload[5] & 0x0F)
            let line = "PIN (Start Time): Current  \(Self.two(date))-\(Self.two(month)) \(Self.two(hour)):\(Self.two(min))\n"
            return (.other(packetClass: 0, type: 1), [line])
        case 2: // length and elapsed time
            guard n >= 5 else { return nil }
            let min = Int(payload[2] & 0x3F), hour = Int(payload[3] & 0x1F)
            var lines = ["Program length (HH:MM): \(Self.two(hour)):\(Self.two(min))  "]
            var elapsed: Int?
            if n > 6 {
                let em = Int(payload[4] & 0x3F), eh = Int(payload[5] & 0x1F)
                lines.append("Elapsed (HH:MM): \(Self.two(eh)):\(Self.two(em))")
                elapsed = eh * 60 + em
            }
            if n > 8 {
                lines.append("Elapsed (SS) :\(Self.two(Int(payload[6] & 0x3F)))")
            }
            return (.lengthElapsed(lengthMinutes: hour * 60 + min, elapsedMinutes: elapsed), lines)
        case 3: // program name
            let name = Self.text(payload)
            currentProgramName = name
            return (.programName(name), ["Program name: " + name])
        case 4: // program type
            guard n >= 5 else { return nil }
            var s = ""
            var names: [String] = []
            for i in 2..<(n - 1) {
                let b = Int(payload[i])
                if b == 0 { continue }
                if b >= 0x20 && b < 0x20 + Self.programTypes.count {
                    let t = Self.programTypes[b - 0x20]
                    names.append(t)
                    s += "[" + t + "] "
                }
            }
            return (.programType(names), ["Program type " + s])
        case 5: // content advisory
            guard n >= 5 else { return nil }
            return contentAdvisory(payload[2], payload[3])
        case 8: // CGMS
            return copyGeneration(payload[2], payload[3])
        case 0x10...0x17: // description lines
            let d = Self.text(payload)
            guard !d.isEmpty else { return nil }
            return (.other(packetClass: 0, type: UInt8(type)), ["XDS description line \(type - 0x10): " + d])
        default:
            return nil
        }
    }

    private func channelClass(type: Int, payload: [UInt8]) -> (XDSContent, [String])? {
        let n = payload.count
        switch type {
        case 1:
            let name = Self.text(payload)
            return (.networkName(name), ["Network: " + name])
        case 2:
            guard n == 7 || n == 9 else { return nil }
            let letters = Self.text(payload)
            return (.callLetters(letters), ["Call Letters: " + letters])
        case 4:
            guard n >= 7 else { return nil }
            let b1 = UInt32(payload[2] & 0x10), b2 = UInt32(payload[3] & 0x10)
            let b3 = UInt32(payload[4] & 0x10), b4 = UInt32(payload[5] & 0x10)
            let tsid = (b4 << 12) | (b3 << 8) | (b2 << 4) | b1
            guard tsid != 0 else { return nil }
            return (.other(packetClass: 2, type: 4), ["TSID: \(tsid)"])
        default:
            return nil
        }
    }

    private func contentAdvisory(_ c1: UInt8, _ c2: UInt8) -> (XDSContent, [String])? {
        guard c1 & 0x40 != 0, c2 & 0x40 != 0 else { return nil }
        let da2 = c1 & 0x20 != 0, a1 = c1 & 0x10 != 0, a0 = c1 & 0x08 != 0
        let r = Int(c1 & 0x07)
        let fv = c2 & 0x20 != 0, s = c2 & 0x10 != 0, la3 = c2 & 0x08 != 0
        let g = Int(c2 & 0x07)
        var lines: [String] = []
        if !a1 && a0 {
            lines.append("ContentAdvisory: US TV Parental Guidelines. Age Rating: " + Self.usTVAges[g])
            var content = ""
            if fv { content = g == 2 ? "[Fantasy Violence] " : "[Violence] " }
            if s { content += "[Sexual Situations] " }
            if la3 { content += "[Adult Language] " }
            if da2 { content += "[Sexually Suggestive Dialog] " }
            lines.append(content)
        }
        if !a0 {
            lines.append("ContentAdvisory: MPA Rating: " + Self.mpaRatings[r])
        } else if a1 && !la3 {
            if !da2 {
                lines.append("ContentAdvisory: Canadian English Rating: " + Self.canadianEnglishRatings[g])
            } else {
                lines.append("ContentAdvisory: Canadian French Rating: " + Self.canadianFrenchRatings[g])
            }
        }
        if lines.isEmpty { return nil }
        return (.contentAdvisory(lines[0]), lines)
    }

    private func copyGeneration(_ c1: UInt8, _ c2: UInt8) -> (XDSContent, [String])? {
        guard c1 & 0x40 != 0, c2 & 0x40 != 0 else { return nil }
        let cgms = Int((c1 & 0x18) >> 3), apsBits = Int((c1 & 0x06) >> 1)
        return (.other(packetClass: 0, type: 8), ["CGMS: " + Self.copyGenerations[cgms], "APS: " + Self.analogProtections[apsBits],
                                                  "Redistribution Control Descriptor: \(c2 & 1)"])
    }

    // The tables of the rating and copy-control packets, made once: broadcasters repeat these
    // packets every few seconds, and building the arrays per packet was a good part of their cost.
    private static let usTVAges = ["None", "TV-Y (All Children)", "TV-Y7 (Older Children)", "TV-G (General Audience)",
                                   "TV-PG (Parental Guidance Suggested)", "TV-14 (Parents Strongly Cautioned)",
                                   "TV-MA (Mature Audience Only)", "None"]
    private static let mpaRatings = ["N/A", "G", "PG", "PG-13", "R", "NC-17", "X", "Not Rated"]
    private static let canadianEnglishRatings = ["Exempt", "Children", "Children eight years and older",
                                                 "General programming suitable for all audiences", "Parental Guidance",
                                                 "Viewers 14 years and older", "Adult Programming", "[undefined]"]
    private static let canadianFrenchRatings = ["Exempt?es", "G?n?ral", "G?n?ral - D?conseill? aux jeunes enfants",
                                                "Cette ?mission peut ne pas convenir aux enfants de moins de 13 ans",
                                                "Cette ?mission ne convient pas aux moins de 16 ans",
                                                "Cette ?mission est r?serv?e aux adultes", "[invalid]", "[invalid]"]
    private static let copyGenerations = ["Copy permitted (no restrictions)", "No more copies (one generation copy has been made)",
                                          "One generation of copies can be made", "No copying is permitted"]
    private static let analogProtections = ["No APS", "PSP On; Split Burst Off", "PSP On; 2 line Split Burst On",
                                            "PSP On; 4 line Split Burst On"]

    static let programTypes: [String] = [
        "Education", "Entertainment", "Movie", "News", "Religious", "Sports", "Other", "Action",
        "Advertisement", "Animated", "Anthology", "Automobile", "Awards", "Baseball", "Basketball",
        "Bulletin", "Business", "Classical", "College", "Combat", "Comedy", "Commentary", "Concert",
        "Consumer", "Contemporary", "Crime", "Dance", "Documentary", "Drama", "Elementary", "Erotica",
        "Exercise", "Fantasy", "Farm", "Fashion", "Fiction", "Food", "Football", "Foreign",
        "Fund-Raiser", "Game/Quiz", "Garden", "Golf", "Government", "Health", "High_School", "History",
        "Hobby", "Hockey", "Home", "Horror", "Information", "Instruction", "International", "Interview",
        "Language", "Legal", "Live", "Local", "Math", "Medical", "Meeting", "Military", "Mini-Series",
        "Music", "Mystery", "National", "Nature", "Police", "Politics", "Premiere", "Pre-Recorded",
        "Product", "Professional", "Public", "Racing", "Reading", "Repair", "Repeat", "Review",
        "Romance", "Science", "Series", "Service", "Shopping", "Soap_Opera", "Special", "Suspense",
        "Talk", "Technical", "Tennis", "Travel", "Variety", "Video", "Weather", "Western",
    ]
}
