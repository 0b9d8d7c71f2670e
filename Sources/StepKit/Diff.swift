/// A line-based unified diff (as `diff -u` prints), for showing file changes in plans.
///
/// The longest common subsequence is computed by dynamic programming over the lines that
/// remain after trimming the common prefix and suffix; config files are small, and for very
/// large differences a summary is returned instead of burning memory.
public enum UnifiedDiff {
    public static func make(old: String, new: String, oldName: String, newName: String, context: Int = 3) -> String {
        let a = lines(old), b = lines(new)
        if a == b { return "" }
        var prefix = 0
        while prefix < a.count, prefix < b.count, a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix, suffix < b.count - prefix, a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let am = Array(a[prefix..<(a.count - suffix)]), bm = Array(b[prefix..<(b.count - suffix)])
        guard am.count * bm.count <= 25_000_000 else {
            return "--- \(oldName)\n+++ \(newName)\n@@ (\(a.count) lines -> \(b.count) lines; too large to diff) @@\n"
        }
        // ops over the whole files: (kind, text) with kind " ", "-", "+"
        var ops: [(Character, String)] = a[0..<prefix].map { (" ", $0) }
        ops += lcsOps(am, bm)
        ops += a[(a.count - suffix)...].map { (" ", $0) }

        var out = "--- \(oldName)\n+++ \(newName)\n"
        // Group changes into hunks with `context` lines around them.
        let changeIdx = ops.indices.filter { ops[$0].0 != " " }
        var i = 0
        while i < changeIdx.count {
            let start = max(0, changeIdx[i] - context)
            var end = min(ops.count - 1, changeIdx[i] + context)
            var j = i
            while j + 1 < changeIdx.count, changeIdx[j + 1] - context <= end + 1 {
                j += 1; end = min(ops.count - 1, changeIdx[j] + context)
            }
            // line numbers at hunk start
            var oldLine = 1, newLine = 1
            for k in 0..<start { if ops[k].0 != "+" { oldLine += 1 }; if ops[k].0 != "-" { newLine += 1 } }
            let slice = ops[start...end]
            let oldCount = slice.filter { $0.0 != "+" }.count, newCount = slice.filter { $0.0 != "-" }.count
            out += "@@ -\(range(oldLine, oldCount)) +\(range(newLine, newCount)) @@\n"
            for (k, t) in slice { out += "\(k)\(t)\n" }
            i = j + 1
        }
        return out
    }

    private static func range(_ start: Int, _ count: Int) -> String {
        count == 1 ? "\(start)" : "\(count == 0 ? start - 1 : start),\(count)"
    }

    private static func lines(_ s: String) -> [String] {
        if s.isEmpty { return [] }
        var l = s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() } else { l[l.count - 1] += "\n\\ No newline at end of file" }
        return l
    }

    private static func lcsOps(_ a: [String], _ b: [String]) -> [(Character, String)] {
        let n = a.count, m = b.count
        if n == 0 { return b.map { ("+", $0) } }
        if m == 0 { return a.map { ("-", $0) } }
        // lengths[i][j] = LCS of a[i...] and b[j...]
        var L = [[Int32]](repeating: [Int32](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                L[i][j] = a[i] == b[j] ? L[i + 1][j + 1] + 1 : max(L[i + 1][j], L[i][j + 1])
            }
        }
        var ops: [(Character, String)] = []
        var i = 0, j = 0
        while i < n, j < m {
            if a[i] == b[j] { ops.append((" ", a[i])); i += 1; j += 1 }
            else if L[i + 1][j] >= L[i][j + 1] { ops.append(("-", a[i])); i += 1 }
            else { ops.append(("+", b[j])); j += 1 }
        }
        while i < n { ops.append(("-", a[i])); i += 1 }
        while j < m { ops.append(("+", b[j])); j += 1 }
        return ops
    }
}
