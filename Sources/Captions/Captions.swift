// Captions: RCWT recordings in, CEA-608 captions and XDS out, written as CCExtractor writes them.
//
// Pure values in, pure values out (no I/O), so the offline tool (`ccr decode`) and the tuner
// server run exactly the same code:
//
//   bytes ──RCWTRecordAssembler / RCWTFileReader──> RCWTRecord
//         ──CaptionDecoder (one per tuner; screens allocated on first use)──> CaptionEvent
//         ──SRTWriter / TXTWriter / TTXTWriter (one per output file)──> UTF-8 text, CRLF
//
// A `.cue` event carries either srt screen rows (`rows`) or transcript lines (`lines`): CCExtractor
// writes srt per screen but txt/ttxt per row, with different timing, and both come out of one pass.
// `.xds` events carry typed XDS content (program name, network, ...) and their ttxt lines.
