import Foundation
import Testing
@testable import StepKit

/// ccrun refuses to ship a ccr that loads the Swift runtime (the hosts have none), so reading the
/// libraries an executable needs must be right for real binaries and say "cannot tell" otherwise.
struct ELFDependenciesTests {
    @Test func readsTheLibrariesOfRealExecutables() throws {
        let ls = try #require(ELFDependencies.neededLibraries(ofFile: "/bin/ls"))
        #expect(ls.contains("libc.so.6"))
        #expect(!ls.contains { $0.hasPrefix("libswiftCore") })

        // This test bundle is a debug build: it loads the Swift runtime, as a debug ccr does.
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let own = try #require(ELFDependencies.neededLibraries(ofFile: exe))
        #expect(own.contains { $0.hasPrefix("libswiftCore") }, "\(exe): \(own)")
    }

    @Test func cannotTellForAnythingElse() throws {
        let sb = try Sandbox()
        let script = sb.path("/ccr")
        try Data("#!/bin/sh\necho stand-in\n".utf8).write(to: URL(fileURLWithPath: script))
        #expect(ELFDependencies.neededLibraries(ofFile: script) == nil)
        #expect(ELFDependencies.neededLibraries(ofFile: sb.path("/missing")) == nil)
    }
}
