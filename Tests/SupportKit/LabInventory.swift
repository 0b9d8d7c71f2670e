import Foundation

/// The lab that `ccrun lab up` brought up, as seen by tests.
///
/// Tests needing lab hosts read the inventory that `ccrun lab up` writes (default
/// `/var/lib/ccrun-lab/inventory.json`, or `$CCRUN_LAB_INVENTORY`). Without it they are skipped
/// with that reason, except under `CI=true`, where a missing lab is a failure.
public enum LabEnvironment {
    public static let inventoryPath: String =
        ProcessInfo.processInfo.environment["CCRUN_LAB_INVENTORY"] ?? "/var/lib/ccrun-lab/inventory.json"

    public static var available: Bool { FileManager.default.fileExists(atPath: inventoryPath) }

    /// The sysv-host suites: a lab of systemd hosts (`ccrun lab up --init systemd`) runs only
    /// the systemd suite, whose checks (systemctl, units) are the ones that hold there.
    public static var shouldRun: Bool { (available || Fixtures.isCI) && !hasSystemdHosts }

    /// True when the running lab's hosts boot systemd (the inventory's `labInit` host variable).
    public static var hasSystemdHosts: Bool {
        guard let data = FileManager.default.contents(atPath: inventoryPath),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let hosts = json["hosts"] as? [String: [String: Any]] else { return false }
        return hosts.values.contains { ($0["vars"] as? [String: Any])?["labInit"] as? String == "systemd" }
    }

    /// True when the lab has the fleet's hosts (`ccrun lab up --fleet`): repo-node-2, web-node-2, lb.
    public static var hasFleetHosts: Bool {
        guard let data = FileManager.default.contents(atPath: inventoryPath),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let hosts = json["hosts"] as? [String: Any] else { return false }
        return ["repo-node-2", "web-node-2", "lb"].allSatisfy { hosts[$0] != nil }
    }

    /// The network namespace a lab host lives in (its inventory's `netns` variable), so that a
    /// test on the scratch lab (`CCRUN_LAB_INVENTORY`) never touches the main lab's host of that name.
    public static func namespace(of host: String) -> String? {
        guard let data = FileManager.default.contents(atPath: inventoryPath),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let hosts = json["hosts"] as? [String: [String: Any]] else { return nil }
        return (hosts[host]?["vars"] as? [String: Any])?["netns"] as? String
    }

    public static var skipReason: String {
        hasSystemdHosts ? "the lab's hosts boot systemd; these tests need the default hosts (`ccrun lab up --init sysv`)"
            : "lab not running (run `ccrun lab up` as root first)"
    }
}
