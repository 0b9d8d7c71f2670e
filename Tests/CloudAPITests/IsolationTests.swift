import CloudAPI
import Foundation
import SupportKit
import Testing

/// A network namespace with only loopback up: no route to any other address.
struct LoopbackNamespace {
    let name = "ccrun-aws-" + UUID().uuidString.prefix(8).lowercased()
    init() throws {
        for argv in [["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"]] {
            let r = try Exec.run(["/usr/bin/env"] + argv)
            guard r.status == 0 else { throw TestFailure("\(argv.joined(separator: " ")): \(r.stderr)") }
        }
    }
    func remove() { _ = try? Exec.run(["/usr/bin/env", "ip", "netns", "delete", name]) }
}

@Suite("ccrun aws isolated in a loopback-only network namespace", .serialized)
struct IsolationTests {
    @Test("apply and plan work with only loopback and moto; any other endpoint address fails",
          .enabled(if: getuid() == 0, "needs root for ip netns"))
    func loopbackOnly() throws {
        let ns = try LoopbackNamespace()
        defer { ns.remove() }
        let w = try AWSWorld(namespace: ns.name)
        defer { w.close() }
        // The namespace really has nothing but loopback.
        let routes = try Exec.run(["/usr/bin/env", "ip", "-n", ns.name, "-4", "route", "show"])
        #expect(routes.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "routes: \(routes.stdout)")

        let apply = try w.ccrun(["apply"])
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        let images = try w.ccrun(["images"])
        #expect(images.status == 0, "\(images.stdout)\(images.stderr)")
        #expect(try w.ccrun(["plan"]).status == 0)

        // A request to any address but loopback cannot leave the namespace.
        let away = try w.ccrun(["plan", "--phase", "base"], env: ["AWS_ENDPOINT_URL_RDS": "http://198.51.100.99:9"])
        #expect(away.status == 1)
        #expect((away.stdout + away.stderr).contains("cannot reach http://198.51.100.99:9"), "\(away.stdout)\(away.stderr)")
        #expect(try w.ccrun(["destroy"]).status == 0)
    }
}
