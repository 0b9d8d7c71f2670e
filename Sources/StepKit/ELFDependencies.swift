import LeanFoundation

/// The shared libraries an ELF executable asks the dynamic loader for (its `DT_NEEDED` entries),
/// read from the file's program headers without running it.
///
/// WHY: a binary shipped to target hosts must not need the Swift runtime (the hosts have none),
/// and a debug `ccr` sits right beside a debug `ccrun` in a build directory. Checking the file
/// before the run turns "the service dies on the host with a loader error" into an error on the
/// controller naming the file. Only 64-bit little-endian ELF (x86_64, aarch64) is read; anything
/// else (a script standing in for ccr in a test) gives nil: "cannot tell", not "bad".
public enum ELFDependencies {
    /// The `DT_NEEDED` library names, or nil when `path` is not a readable 64-bit little-endian ELF
    /// file with a dynamic section (a fully static binary has none and gives []).
    public static func neededLibraries(ofFile path: String) -> [String]? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        /// `count` bytes at `offset`; fewer only when `partial` (a name near the end of the file).
        func read(_ offset: UInt64, _ count: Int, partial: Bool = false) -> Data? {
            guard (try? file.seek(toOffset: offset)) != nil, let d = try? file.read(upToCount: count), d.count == count || (partial && !d.isEmpty) else { return nil }
            return d
        }
        guard let header = read(0, 64), header.starts(with: [0x7f, 0x45, 0x4c, 0x46]), header[4] == 2, header[5] == 1 else { return nil }
        let phoff = header.uint(at: 0x20, 8), phentsize = Int(header.uint(at: 0x36, 2)), phnum = Int(header.uint(at: 0x38, 2))
        guard phentsize >= 56, phnum < 4096, let table = read(phoff, phentsize * phnum) else { return nil }

        struct Segment { var type: UInt64, offset: UInt64, vaddr: UInt64, size: UInt64 }
        let segments = (0..<phnum).map { i -> Segment in
            let b = i * phentsize
            return Segment(type: table.uint(at: b, 4), offset: table.uint(at: b + 8, 8), vaddr: table.uint(at: b + 16, 8), size: table.uint(at: b + 32, 8))
        }
        guard let dynamic = segments.first(where: { $0.type == 2 /* PT_DYNAMIC */ }) else { return [] }
        guard dynamic.size < 1 << 20, let entries = read(dynamic.offset, Int(dynamic.size)) else { return nil }

        var needed: [UInt64] = [], strtab: UInt64?
        for e in stride(from: 0, to: entries.count - 15, by: 16) {
            let tag = entries.uint(at: e, 8), value = entries.uint(at: e + 8, 8)
            if tag == 0 { break }                      // DT_NULL
            if tag == 1 { needed.append(value) }       // DT_NEEDED: an offset into the string table
            if tag == 5 { strtab = value }             // DT_STRTAB: a virtual address
        }
        // The string table's address is where it is loaded; the PT_LOAD segment holding it says where in the file that is.
        guard let strtab, let load = segments.first(where: { $0.type == 1 && $0.vaddr <= strtab && strtab < $0.vaddr + $0.size }) else {
            return needed.isEmpty ? [] : nil
        }
        let base = strtab - load.vaddr + load.offset
        return needed.compactMap { offset in
            guard let bytes = read(base + offset, 256, partial: true), let end = bytes.firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
        }
    }
}

private extension Data {
    /// A little-endian unsigned integer of `width` bytes at `offset` from the start.
    func uint(at offset: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<width).reversed() { v = v << 8 | UInt64(self[startIndex + offset + i]) }
        return v
    }
}
