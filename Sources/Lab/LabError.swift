import LeanFoundation

/// Why a lab operation could not proceed, phrased as what to do about it.
public enum LabError: Error, CustomStringConvertible, LocalizedError {
    case notRoot
    case unknownInstance(String)
    case unknownHost(String)
    case tooManyHosts(requested: Int, maximum: Int)
    case missingTool(String, package: String)
    case noDebianMirror(String)
    case timeout(String)
    case hostNotRunning(String)

    public var description: String {
        switch self {
        case .notRoot:
            return "the lab needs root (network namespaces, mounts, loop devices): run as root, e.g. `sudo ccrun lab up`"
        case .unknownInstance(let name):
            return "unknown lab instance '\(name)' (known: main, scratch)"
        case .unknownHost(let name):
            return "no lab host named '\(name)' (see `ccrun lab status`)"
        case .tooManyHosts(let requested, let maximum):
            return "\(requested) hosts (--hosts, plus 3 with --fleet) is more than this lab's address range allows (\(maximum))"
        case .missingTool(let tool, let package):
            return "'\(tool)' not found: install it with `apt-get install -y \(package)`"
        case .noDebianMirror(let detail):
            return "cannot find a Debian mirror for debootstrap in /etc/apt/sources.list{,.d}: \(detail)"
        case .timeout(let what):
            return "timed out waiting for \(what)"
        case .hostNotRunning(let name):
            return "lab host '\(name)' is not running (run `ccrun lab up`)"
        }
    }

    public var errorDescription: String? { description }
}
