/// Decodes RCWT records into caption cues and XDS events (CEA-608, one channel).
public struct CaptionDecoder: Sendable {
    public let options: DecoderOptions

    public init(options: DecoderOptions = .init()) {
        self.options = options
    }

    /// Decodes one record; returns the events it completes.
    public mutating func decode(_ record: RCWTRecord) -> [CaptionEvent] {
        []
    }

    /// End of stream: returns what is still on screen as a final cue.
    public mutating func finish() -> [CaptionEvent] {
        []
    }
}
