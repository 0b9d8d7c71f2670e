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

    public static var shouldRun: Bool { available || Fixtures.isCI }

    public static let skipReason = "lab not running (run `ccrun lab up` as root first)"
}
