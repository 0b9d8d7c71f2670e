/// The range of caption times, in milliseconds of stream time.
///
/// Times come from tuners (RCWT record timestamps), so any Int64 can arrive, Int64.max and
/// Int64.min included. They are clamped once, where they enter the decoder, into a range wide
/// enough for every real clock (a 33-bit PTS, milliseconds since 1970, ...) and narrow enough
/// that every later sum, difference or scale by 1,000 stays far from overflow: the decoder's
/// pair offsets, the store's ranges, the web's durations and WebVTT/SRT times.
public enum StreamTime {
    /// 2^50 ms, about 35,700 years.
    public static let maximum: Int64 = 1 << 50
    public static let range: ClosedRange<Int64> = 0...maximum

    /// `ms` moved into `range`.
    @inlinable public static func clamped(_ ms: Int64) -> Int64 {
        ms < 0 ? 0 : (ms > maximum ? maximum : ms)
    }

    /// The end time SubRip and WebVTT show for a cue ending at `end`: 1 ms before it.
    @inlinable public static func shownEnd(_ end: Int64) -> Int64 {
        clamped(end) - 1
    }
}
