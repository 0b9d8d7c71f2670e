import Foundation

/// A local non-root login for the tests: `ccrun-test`, shell /bin/sh (root's bash here reads a
/// slow ~/.bashrc on every SSH command), passwordless sudo through /etc/sudoers.d/ccrun-test.
/// Created once per test process when the tests run as root with useradd and sudo installed.
enum TestUser {
    static let name = "ccrun-test"

    /// Why the user cannot be used, or nil when it is ready.
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "tests do not run as root (needed to create a test user)" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") else {
            return "sudo is not installed (apt-get install -y sudo)"
        }
        do {
            if getpwnam(name) == nil {
                // '*' = no password, but not a locked account (sshd without PAM refuses locked ones).
                try Shell.run("/usr/sbin/useradd", ["-m", "-s", "/bin/sh", "-p", "*", name])
            }
            let rule = "\(name) ALL=(ALL) NOPASSWD: ALL\n"
            let path = "/etc/sudoers.d/\(name)"
            if (try? String(contentsOfFile: path, encoding: .utf8)) != rule {
                try rule.write(toFile: path, atomically: true, encoding: .utf8)
                chmod(path, 0o440)
            }
            return nil
        } catch {
            return "cannot create test user \(name): \(error)"
        }
    }()

    static var available: Bool { unavailableReason == nil }

    static var home: String {
        guard let entry = getpwnam(name) else { return "/home/\(name)" }
        return String(cString: entry.pointee.pw_dir)
    }
}
