// The parts of Foundation that ccrun's modules use, without ICU (issue 19).
//
// Full Foundation on Linux links ICU's data (34 MB of the 63 MB ccrun). FoundationEssentials has
// Data, Date, URL, FileManager, JSON coding and ProcessInfo, but not the few NSString-era calls
// ccrun used (trimming, `String(format:)`, FileHandle, NSLock): this module re-exports
// FoundationEssentials with Glibc and Dispatch (which Foundation re-exported) and adds those calls,
// each as small as its users need. ccrun's modules write `import LeanFoundation` where they wrote
// `import Foundation`; tests keep full Foundation, where Foundation's own versions win (the
// extensions here are `@_disfavoredOverload`).
#if canImport(FoundationEssentials)
@_exported import FoundationEssentials
#else
@_exported import Foundation
#endif
#if canImport(Glibc)
@_exported import Glibc
#endif
@_exported import Dispatch
