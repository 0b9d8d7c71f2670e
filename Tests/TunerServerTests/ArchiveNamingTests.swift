import Foundation
import PropertyBased
import Testing
@testable import TunerServer
import ServerFiles

/// Repository nodes share one archive (the guide's NFS volume): the files of two nodes must never
/// be the same files, whatever the tuners, program names, times and sequences.
@Suite struct ArchiveNamingTests {
    /// Node names as operators write them (host names, `node_name`), mixed case and punctuation
    /// included, so that slugging is exercised.
    static let names = Gen.element(of: Array("abcXYZ019-_. :")).array(of: 1...12).map { String($0.compactMap { $0 }) }

    @Test("bases of two different nodes never meet; the same node's sequences never meet")
    func basesAreUniqueAcrossNodes() async {
        let time = Gen.int(in: 0...4_000_000_000).map { UTCTime(secondsSinceEpoch: $0) }
        await propertyCheck(count: 2000, input: Self.names, Self.names, Self.names, Self.names, time, Gen.int(in: 1...20), Gen.int(in: 1...20)) {
            nodeA, nodeB, nameA, nameB, started, seqA, seqB in
            let a = ArchiveLayout(root: "/srv/archive", node: nodeA), b = ArchiveLayout(root: "/srv/archive", node: nodeB)
            let baseA = a.basePath(tuner: "wabc", startedAt: started, slug: programSlug(nameA), sequence: seqA)
            let baseB = b.basePath(tuner: "wabc", startedAt: started, slug: programSlug(nameB), sequence: seqB)
            if programSlug(nodeA) != programSlug(nodeB) { #expect(baseA != baseB) }
            if programSlug(nameA) == programSlug(nameB), seqA != seqB {
                #expect(a.basePath(tuner: "wabc", startedAt: started, slug: programSlug(nameA), sequence: seqB) != baseA)
            }
        }
    }

    /// What the database holds (node host name, tuner description, start, program name) is all
    /// `ccr web` needs to find the file: the name is built from exactly these.
    @Test func theNameIsMadeOfWhatTheDatabaseHolds() {
        let layout = ArchiveLayout(root: "/srv/archive/", node: "Repo-Node-2")
        let started = UTCTime(year: 2026, month: 12, day: 7, hour: 9, minute: 5, second: 3)
        #expect(layout.basePath(tuner: ArchiveLayout.tunerFolder(description: "WABC HD", address: nil), startedAt: started,
                                slug: programSlug("The Tudors"), sequence: 2)
                == "/srv/archive/2026/12/07/wabc-hd/090503-the-tudors-2@repo-node-2")
        #expect(ArchiveLayout(root: "/srv/archive").basePath(tuner: "wabc-hd", startedAt: started, slug: "news", sequence: 1)
                == "/srv/archive/2026/12/07/wabc-hd/090503-news")
    }
}
