// swift-tools-version: 6.1
//
// libFuzzer targets for ccr's parsers, kept out of the main package's build (they need
// `-sanitize=fuzzer`, which only `Fuzz/run` passes). The sources under test are the main
// package's own files, linked in by symlink (Sources/Captions, Sources/TunerCore/*.swift): the
// main package exports no library products, and these files need neither NIO nor the store.
import PackageDescription

let package = Package(
    name: "CCRFuzz",
    targets: [
        .target(name: "Captions", path: "Sources/Captions"),
        /// The NIO-free part of TunerServer: framer, session, program recording.
        .target(name: "TunerCore", dependencies: ["Captions"], path: "Sources/TunerCore"),
        /// The shim every target's main uses to start libFuzzer's driver, and the two readings
        /// of a recording (file reader, assembler in pieces) the targets compare.
        .target(name: "FuzzSupport", dependencies: ["Captions"]),
        /// `-sendto` byte streams into a TunerSession (framer, handshake, record assembly, decoder).
        .executableTarget(name: "FuzzSession", dependencies: ["TunerCore", "Captions", "FuzzSupport"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        /// `.bin` (RCWT) files into the reader, the assembler and the 608/XDS decoder.
        .executableTarget(name: "FuzzDecoder", dependencies: ["Captions", "FuzzSupport"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        /// `.bin` records into the CEA-708 decoder: packets, service blocks, windows, srt rows.
        .executableTarget(name: "FuzzDTVCC", dependencies: ["Captions", "FuzzSupport"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v6]
)
