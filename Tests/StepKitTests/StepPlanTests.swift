import Foundation
import Testing
@testable import StepKit
import SupportKit

@Suite struct LineInFileTests {
    let fstab = "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/xvdf /srv ext4 defaults 0 0\n"

    @Test func changedFstabLineIsReplacedNotAppended() throws {
        var f = FactFixtures()
        f.file("/etc/fstab", .file(fstab))
        let step = LineInFile("/etc/fstab", line: "/dev/xvdf /srv ext4 defaults,nofail 0 0", key: .fstabMountPoint)
        let change = try #require(try f.plan(step).change)
        guard case let .upload(u) = change.actions.last else { Issue.record("no upload"); return }
        let text = String(decoding: u.payload(), as: UTF8.self)
        #expect(text == "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/xvdf /srv ext4 defaults,nofail 0 0\n")
        #expect(change.diff?.contains("-/dev/xvdf /srv ext4 defaults 0 0\n+/dev/xvdf /srv ext4 defaults,nofail 0 0\n") == true)
    }

    @Test func presentLineIsSatisfiedAndMissingLineAppended() throws {
        var f = FactFixtures()
        f.file("/etc/fstab", .file(fstab))
        #expect(try f.plan(LineInFile("/etc/fstab", line: "/dev/xvdf /srv ext4 defaults 0 0", key: .fstabMountPoint)).isSatisfied)
        let change = try #require(try f.plan(LineInFile("/etc/fstab", line: "nfs:/srv/ccr /mnt/ccr nfs rw 0 0", key: .fstabMountPoint)).change)
        guard case let .upload(u) = change.actions.last else { Issue.record("no upload"); return }
        #expect(String(decoding: u.payload(), as: UTF8.self) == fstab + "nfs:/srv/ccr /mnt/ccr nfs rw 0 0\n")
    }

    @Test func duplicatesOfTheKeyCollapseToOneLine() {
        let text = "/srv/a host1(rw)\n/srv/b host2(ro)\n/srv/a host3(rw)\n"
        #expect(LineEditor.edit(text, line: "/srv/a *(rw,sync)", key: .exportPath, present: true) == "/srv/a *(rw,sync)\n/srv/b host2(ro)\n")
    }

    @Test func absentRemovesEveryLineWithTheKeyAndIgnoresComments() {
        let text = "# /srv/a old\n/srv/a host1(rw)\n/srv/b host2(ro)\n"
        #expect(LineEditor.edit(text, line: "/srv/a x", key: .exportPath, present: false) == "# /srv/a old\n/srv/b host2(ro)\n")
        #expect(LineEditor.edit("/srv/b x\n", line: "/srv/a x", key: .exportPath, present: false) == nil)
    }

    @Test func missingFileIsCreatedAndRemovedOnUndo() throws {
        var f = FactFixtures()
        f.file("/etc/exports", nil)
        let change = try #require(try f.plan(LineInFile("/etc/exports", line: "/srv *(rw)", key: .exportPath)).change)
        #expect(change.undo == [.restoreFile(path: "/etc/exports", previous: nil)])
        #expect(try f.plan(LineInFile("/etc/exports", line: "/srv *(rw)", key: .exportPath, present: false)).isSatisfied)
    }
}

@Suite struct DirectoryTests {
    @Test func absentDirectoryIsCreatedAndUndoRemovesWhatMkdirMade() throws {
        var f = FactFixtures()
        f.file("/srv/ccr/data", nil, content: false)
        f.raw("missing-ancestors:/srv/ccr/data", "/srv/ccr\n")
        let change = try #require(try f.plan(Directory("/srv/ccr/data", mode: "2775", owner: "ccr", group: "ccr")).change)
        #expect(change.commands == ["mkdir -p /srv/ccr/data && chown ccr:ccr /srv/ccr/data && chmod 2775 /srv/ccr/data"])
        #expect(change.undo == [.removeDirectory(path: "/srv/ccr/data"), .removeDirectory(path: "/srv/ccr")])
    }

    @Test func wrongModeIsFixedAndUndoRestoresIt() throws {
        var f = FactFixtures()
        f.file("/srv", .directory(mode: "700"), content: false)
        f.raw("missing-ancestors:/srv", "")
        let change = try #require(try f.plan(Directory("/srv")).change)
        #expect(change.commands == ["chown root:root /srv && chmod 755 /srv"])
        #expect(change.undo == [.restoreDirectory(path: "/srv", mode: "700", owner: "root", group: "root")])
        f.file("/srv", .directory(), content: false)
        #expect(try f.plan(Directory("/srv")).isSatisfied)
    }

    @Test func aFileInTheWayIsRefused() throws {
        var f = FactFixtures()
        f.file("/srv", .file("x"), content: false)
        f.raw("missing-ancestors:/srv", "")
        #expect(throws: StepRefusal.self) { try f.plan(Directory("/srv")) }
    }
}

@Suite struct PackageTests {
    @Test func aptInstallsOnlyWhatIsMissingAndRecordsThePreviousSet() throws {
        var f = FactFixtures(system: .debian())
        // nfs-kernel-server was removed earlier (its conffiles remain): dpkg still lists it, not installed.
        f.packages(dpkg: ["libc6", "nfs-common"], removed: ["nfs-kernel-server"])
        let change = try #require(try f.plan(PackageInstalled(["nfs-common", "nfs-kernel-server"])).change)
        #expect(change.commands == [PackageCommands.aptRecovery + "\nif ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >/dev/null || exit 1; fi; DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nfs-kernel-server"])
        #expect(change.undo == [.purgePackages(manager: .apt, requested: ["nfs-kernel-server"], installedBefore: ["libc6", "nfs-common"])])
        f.packages(dpkg: ["libc6", "nfs-common", "nfs-kernel-server"])
        #expect(try f.plan(PackageInstalled(["nfs-common", "nfs-kernel-server"])).isSatisfied)
    }

    @Test func yumAndDnfAreChosenByProbe() throws {
        var yum = FactFixtures(system: .centos(.yum))
        yum.packages(rpm: ["glibc"])
        #expect(try yum.plan(PackageInstalled("nfs-utils")).commands == ["yum install -y -q nfs-utils"])
        var dnf = FactFixtures(system: .centos(.dnf))
        dnf.packages(rpm: ["glibc"])
        let change = try #require(try dnf.plan(PackageInstalled("nfs-utils")).change)
        #expect(change.commands == ["dnf install -y -q nfs-utils"])
        #expect(change.undo == [.purgePackages(manager: .dnf, requested: ["nfs-utils"], installedBefore: ["glibc"])])
        #expect(PackageCommands.purge(["a", "b"], with: .yum) == "yum remove -y -q a b")
        #expect(PackageCommands.purge(["a"], with: .apt) == "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q a")
    }

    @Test func noPackageManagerIsRefused() throws {
        var f = FactFixtures(system: SystemFacts(distribution: "alpine", version: "3", tools: [], initSystem: .sysv))
        f.packages()
        #expect(throws: StepRefusal.self) { try f.plan(PackageInstalled("x")) }
    }
}

@Suite struct ServiceTests {
    func service(_ f: inout FactFixtures, _ name: String, check: ServiceCheck? = nil, _ lines: String) {
        // The same answer feeds both probes (their scripts print the same kinds of lines).
        f.raw(ServiceProbe.probe(name, check: check).query.key, lines)
        f.raw(ServiceProbe.bootProbe(name).query.key, lines)
    }

    @Test func stoppedSysvServiceIsStartedAndMustAnswerOnItsPortAndStayUpForTheSettleTime() throws {
        var f = FactFixtures(system: .debian(init: .sysv))
        service(&f, "ccr", check: .tcpPort(3000), "sysv-script\nsysv-status 3\nanswers-no\n")
        let change = try #require(try f.plan(ServiceRunning("ccr", answers: .tcpPort(3000), waitSeconds: 4, settleSeconds: 2)).change)
        #expect(change.commands.count == 1)
        let script = change.commands[0]
        #expect(script.contains("\nservice ccr start || { ccrun_rc=$?; ccrun_fail \"$(echo 'service ccr start') failed with exit status $ccrun_rc\"; }\n"))
        // 3000 = 0x0BB8, on the wildcard or 127.0.0.1 (0100007F), in LISTEN state (0A).
        #expect(script.contains("(00000000:0BB8|00000000000000000000000000000000:0BB8|0100007F:0BB8|00000000000000000000000001000000:0BB8) [0-9A-F]+:[0-9A-F]+ 0A "))
        // Polls every 0.2 s: answering and up for 2 s (10 polls) is done; not answering after 4 s
        // (20 polls) fails; an LSB status of 1 or 3 twice in a row fails at once.
        #expect(script.contains(" 0A ' /proc/net/tcp /proc/net/tcp6 ) >/dev/null 2>&1; then [ $ccrun_i -ge 10 ] && break\n"))
        #expect(script.contains("  elif [ $ccrun_i -ge 20 ]; then ccrun_fail 'ccr was started but port 3000 on 127.0.0.1 answers is false after 4 s'; fi\n"))
        #expect(script.contains("  if { timeout 10 /etc/init.d/ccr status >/dev/null 2>&1; ccrun_s=$?; [ $ccrun_s = 1 ] || [ $ccrun_s = 3 ]; }; then ccrun_d=$((ccrun_d + 1)); [ $ccrun_d -ge 2 ] && ccrun_fail"))
        // Without a log file the failure says so instead of showing lines.
        #expect(script.hasPrefix("ccrun_fail() { echo \"$1 (no log file known for ccr)\" >&2; exit 1; }\n"))
        #expect(change.undo == [.runScript(summary: "stop ccr", script: "service ccr stop")])
    }

    @Test func aFailedStartShowsWhatTheLogGainedSinceTheStartAndTheSettleTimeIsPerStep() throws {
        var f = FactFixtures(system: .debian(init: .sysv))
        let step = ServiceRunning("ccr-watchdog", answers: .pidFile("/run/ccr-watchdog.pid"), settleSeconds: 0.5, logFile: "/var/log/ccr-watchdog.log")
        f.raw(step.probe.query.key, "sysv-script\nanswers-no\nsysv-status 3\n")
        let script = try #require(try f.plan(step).commands.first)
        #expect(script.contains("ccrun_o=$(wc -c < /var/log/ccr-watchdog.log 2>/dev/null) || ccrun_o=0\nservice ccr-watchdog start"))
        #expect(script.contains("echo \"$1; /var/log/ccr-watchdog.log since the start:\" >&2"))
        #expect(script.contains("tail -c +$((ccrun_o + 1)) /var/log/ccr-watchdog.log | tail -n 4"))
        #expect(script.contains("then [ $ccrun_i -ge 3 ] && break"))
    }

    @Test func systemdStartIsActiveAfterTheSettleTimeAndAFailureShowsTheUnitsJournal() throws {
        var f = FactFixtures(system: .debian(init: .systemd))
        let step = ServiceRunning("ccr-web", answers: .tcpPort(8080), waitSeconds: 30, logFile: "/var/log/ccr-web.log")
        f.raw(step.probe.query.key, "systemd-load loaded\nanswers-no\nsystemd-active activating\nlog Error: database login refused for user 'cc_ro'\n")
        let change = try #require(try f.plan(step).change)
        let script = try #require(change.commands.first)
        #expect(script.contains("\nccrun_t0=$(date +%s); ccrun_o=0; ccrun_o=$(wc -c < /var/log/ccr-web.log 2>/dev/null) || ccrun_o=0\nsystemctl start ccr-web || "))
        // A unit that is not active (failed, or waiting to be restarted) twice in a row fails the step.
        #expect(script.contains("  if ! systemctl is-active --quiet ccr-web; then ccrun_d=$((ccrun_d + 1)); [ $ccrun_d -ge 2 ] && ccrun_fail"))
        #expect(script.contains("elif [ $ccrun_i -ge 150 ]; then"))
        #expect(script.contains("echo \"$1; journalctl -u ccr-web.service since the start:\" >&2"))
        // The service's own lines first (systemd's restart messages would push its reason out),
        // systemd's lines on the unit only when it wrote none.
        #expect(script.contains("ccrun_j=$(journalctl _SYSTEMD_UNIT=ccr-web.service -n 4 --no-pager -o cat --since \"@$ccrun_t0\" 2>/dev/null);"
                                + " if [ -n \"$ccrun_j\" ]; then printf '%s\\n' \"$ccrun_j\"; else journalctl -u ccr-web.service -n 4 --no-pager -o cat --since \"@$ccrun_t0\" 2>/dev/null; fi"))
        #expect(change.undo == [.runScript(summary: "stop ccr-web", script: "systemctl stop ccr-web")])
        // The dry-run's reason: the journal lines the probe read.
        #expect(change.diff == "service ccr-web: stopped -> running\n  its last log lines (journalctl -u ccr-web.service):\n  | Error: database login refused for user 'cc_ro'\n")
        #expect(step.probe.query.shellScript.contains("journalctl -u ccr-web.service -n 4 --no-pager -o cat 2>/dev/null"))
        // Without a check, `systemctl is-active` is the answer.
        var g = FactFixtures(system: .debian(init: .systemd))
        service(&g, "nginx", "systemd-load loaded\nsystemd-active failed\n")
        let nginx = try #require(try g.plan(ServiceRunning("nginx")).commands.first)
        #expect(nginx.contains("\n  if systemctl is-active --quiet nginx; then [ $ccrun_i -ge 10 ] && break\n"))
    }

    /// A service whose process runs but whose heartbeat is stale (`ccr health` exits 1): the probe,
    /// run for real by /bin/sh, says it does not answer and keeps what the check said on stderr;
    /// the plan restarts it and the dry-run shows that reason beside its log lines.
    @Test func runningButStaleHeartbeatIsDriftWithWhatTheCheckSaid() throws {
        let heartbeat = ServiceCheck.command("echo 'ccr watchdog on nfs: its last heartbeat is 42.0 s old (more than 30.0 s)' >&2; exit 1")
        let step = ServiceRunning("ccr-watchdog", answers: .all([.command("true"), heartbeat]), logFile: "/nonexistent/ccr-watchdog.log")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", step.probe.query.shellScript]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let state = try step.probe.parse(FactOutput(stdout: text, status: p.terminationStatus))
        #expect(state.answers == false && state.checkSays == ["ccr watchdog on nfs: its last heartbeat is 42.0 s old (more than 30.0 s)"], "\(text)")
        // Both checks must hold; the first alone does not make the service answer.
        #expect(ServiceCheck.all([.command("true"), .command("true")]).summary == "`true` succeeds and `true` succeeds")

        var f = FactFixtures(system: .debian(init: .sysv))
        f.raw(step.probe.query.key, "sysv-script\nanswers-no\ncheck-says ccr watchdog on nfs: its last heartbeat is 42.0 s old (more than 30.0 s)\nsysv-status 0\nlog database unreachable; will retry\n")
        let change = try #require(try f.plan(step).change)
        #expect(change.commands.first?.contains("service ccr-watchdog restart") == true, "a running service that does not answer is restarted")
        #expect(change.diff?.contains("the check says:\n  | ccr watchdog on nfs: its last heartbeat is 42.0 s old (more than 30.0 s)\n") == true, "\(change.diff ?? "")")
        #expect(change.diff?.contains("| database unreachable; will retry") == true, "\(change.diff ?? "")")
    }

    @Test func sysvDryRunShowsTheReasonFromTheLogFile() throws {
        var f = FactFixtures(system: .debian(init: .sysv))
        let step = ServiceRunning("ccr-watchdog", answers: .pidFile("/run/ccr-watchdog.pid"), logFile: "/var/log/ccr-watchdog.log")
        f.raw(step.probe.query.key, "sysv-script\nanswers-no\nsysv-status 1\nlog Error: database login refused for user 'cc_rw' (mysql://cc_rw@db:3306/cc): check the user name and password\n")
        let change = try #require(try f.plan(step).change)
        #expect(change.diff == "service ccr-watchdog: stopped -> running\n  its last log lines (/var/log/ccr-watchdog.log):\n  | Error: database login refused for user 'cc_rw' (mysql://cc_rw@db:3306/cc): check the user name and password\n")
        // The log is read only when the service is not running (`answers-no`), never in a healthy audit.
        let script = step.probe.query.shellScript
        let healthyBranch = try #require(script.range(of: "then echo answers-yes; else"))
        #expect(!script[..<healthyBranch.lowerBound].contains("tail -n 4"))
        #expect(script.contains("elif [ -r /var/log/ccr-watchdog.log ]; then tail -n 4 /var/log/ccr-watchdog.log"))
    }

    @Test func statusZeroButNotAnsweringMeansRestartNotOk() throws {
        // The nfs-kernel-server trap: the script says "running", nothing serves.
        var f = FactFixtures(system: .debian(init: .sysv))
        service(&f, "nfs-kernel-server", check: .tcpPort(2049), "sysv-script\nsysv-status 0\nanswers-no\n")
        let change = try #require(try f.plan(ServiceRunning("nfs-kernel-server", answers: .tcpPort(2049))).change)
        #expect(change.commands[0].contains("\nservice nfs-kernel-server restart || "))
        #expect(change.undo.isEmpty)
        service(&f, "nfs-kernel-server", check: .tcpPort(2049), "sysv-script\nsysv-status 0\nanswers-yes\n")
        #expect(try f.plan(ServiceRunning("nfs-kernel-server", answers: .tcpPort(2049))).isSatisfied)
    }

    @Test func systemdUsesSystemctl() throws {
        var f = FactFixtures(system: .debian(init: .systemd))
        service(&f, "nginx", "systemd-load loaded\nsystemd-active inactive\nsystemd-enabled disabled\n")
        #expect(try f.plan(ServiceRunning("nginx")).commands.first?.contains("\nsystemctl start nginx || ") == true)
        #expect(try f.plan(ServiceEnabled("nginx")).commands == ["systemctl enable nginx"])
        service(&f, "nginx", "systemd-load loaded\nsystemd-active active\nsystemd-enabled enabled\n")
        #expect(try f.plan(ServiceRunning("nginx")).isSatisfied)
        #expect(try f.plan(ServiceEnabled("nginx")).isSatisfied)
    }

    @Test func sysvScriptOnSystemdHostIsEnabledThroughSystemctlAndJudgedByRcLinks() throws {
        var f = FactFixtures(system: .debian(init: .systemd))
        service(&f, "ccr", "sysv-script\nsystemd-load loaded\nsystemd-active active\nsystemd-enabled generated\n")
        #expect(try f.plan(ServiceEnabled("ccr")).commands == ["systemctl enable ccr"])
        service(&f, "ccr", "sysv-script\nsystemd-load loaded\nsystemd-active active\nsystemd-enabled generated\nrc-start /etc/rc2.d/S01ccr\n")
        #expect(try f.plan(ServiceEnabled("ccr")).isSatisfied)
    }

    @Test func updateRcdEnableAndUndoRemovesLinksItMade() throws {
        var f = FactFixtures(system: .debian(init: .sysv))
        service(&f, "ccr", "sysv-script\nsysv-status 3\n")
        let change = try #require(try f.plan(ServiceEnabled("ccr")).change)
        #expect(change.commands == ["update-rc.d ccr defaults >/dev/null && update-rc.d ccr enable"])
        #expect(change.undo == [.runScript(summary: "disable ccr at boot", script: "update-rc.d -f ccr remove")])
        service(&f, "ccr", "sysv-script\nsysv-status 3\nrc-link /etc/rc2.d/K01ccr\n")
        #expect(try f.plan(ServiceEnabled("ccr")).change?.undo == [.runScript(summary: "disable ccr at boot", script: "update-rc.d ccr disable")])
    }

    @Test func chkconfigCommandLinesOnCentOS() throws {
        var f = FactFixtures(system: .centos(.yum, init: .sysv))
        service(&f, "nfs", "sysv-script\nsysv-status 3\nchkconfig nfs            \t0:off\t1:off\t2:off\t3:off\t4:off\t5:off\t6:off\n")
        let change = try #require(try f.plan(ServiceEnabled("nfs")).change)
        #expect(change.commands == ["chkconfig --add nfs && chkconfig nfs on"])
        #expect(change.undo == [.runScript(summary: "disable nfs at boot", script: "chkconfig nfs off")])
        #expect(try f.plan(ServiceRunning("nfs")).commands.first?.contains("\nservice nfs start || ") == true)
        service(&f, "nfs", "sysv-script\nsysv-status 0\nchkconfig nfs 0:off\t1:off\t2:on\t3:on\t4:on\t5:on\t6:off\n")
        #expect(try f.plan(ServiceEnabled("nfs")).isSatisfied)
    }

    /// A report says what actually runs on the host: the guide's "chkconfig ccr on" is
    /// update-rc.d on a sysv Debian host, systemctl on a systemd one, chkconfig on CentOS.
    @Test func reportLineNamesTheCommandThatRuns() throws {
        let format = ReportPrinter(colour: false, showDiffs: false)
        for (system, expected) in [(SystemFacts.debian(init: .sysv), "update-rc.d ccr defaults >/dev/null && update-rc.d ccr enable"),
                                   (.debian(init: .systemd), "systemctl enable ccr"), (.centos(.yum, init: .sysv), "chkconfig --add ccr && chkconfig ccr on")] {
            var f = FactFixtures(system: system)
            service(&f, "ccr", "sysv-script\nsysv-status 3\nsystemd-load loaded\nsystemd-active inactive\nsystemd-enabled disabled\nchkconfig ccr 0:off\t3:off\n")
            let step = ServiceEnabled("ccr", description: "ccr enabled at boot (the guide's chkconfig ccr on)")
            let change = try #require(try f.plan(step).change)
            let report = StepReport(index: 0, id: step.id, description: step.description, state: .changed, seconds: 0.01, diff: nil,
                                    actions: change.actions.map(\.summary), undo: [], message: nil, irreversible: false)
            #expect(format.line(host: "h", report).hasPrefix("h: changed      ccr enabled at boot (the guide's chkconfig ccr on): \(expected)  "))
        }
    }

    @Test func missingServiceDependsOnEarlierChangeOrIsRefused() throws {
        var f = FactFixtures(system: .debian())
        service(&f, "nfs-kernel-server", "")
        #expect(try f.plan(ServiceRunning("nfs-kernel-server"), pending: true).dependsReason?.contains("does not exist yet") == true)
        #expect(throws: StepRefusal.self) { try f.plan(ServiceRunning("nfs-kernel-server")) }
    }
}

@Suite struct StorageTests {
    func device(_ f: inout FactFixtures, _ answer: String) { f.raw("blockdev:/dev/xvdf", answer) }

    @Test func ext4PresentIsSatisfiedBlankIsFormatted() throws {
        var f = FactFixtures()
        device(&f, "fs ext4")
        #expect(try f.plan(FileSystem(on: "/dev/xvdf")).isSatisfied)
        device(&f, "blank")
        let change = try #require(try f.plan(FileSystem(on: "/dev/xvdf")).change)
        #expect(change.commands == ["mkfs -t ext4 -q -F /dev/xvdf"])
        #expect(change.undo == [.irreversible(reason: "mkfs -t ext4 /dev/xvdf cannot be undone")])
        #expect(FileSystem(on: "/dev/xvdf").reversibility != .reversible)
    }

    @Test func otherFileSystemOrDataIsRefusedUnlessForced() throws {
        var f = FactFixtures()
        device(&f, "fs xfs")
        #expect(throws: StepRefusal.self) { try f.plan(FileSystem(on: "/dev/xvdf")) }
        #expect(try f.plan(FileSystem(on: "/dev/xvdf", force: true)).change?.diff == "/dev/xvdf: xfs -> ext4 (destroys data)\n")
        device(&f, "data")
        #expect(throws: StepRefusal.self) { try f.plan(FileSystem(on: "/dev/xvdf")) }
    }

    @Test func mountWritesFstabLineByMountPointAndMounts() throws {
        var f = FactFixtures()
        f.file("/etc/fstab", .file("/dev/xvdf /srv ext4 defaults 0 0\n"))
        f.raw(MountsProbe.key, "proc /proc proc rw 0 0\n")
        let step = Mount("/dev/xvdf", at: "/srv", options: "defaults,nofail")
        let change = try #require(try f.plan(step).change)
        #expect(change.commands.last == "mount /srv")
        guard case let .upload(u) = change.actions.first(where: { if case .upload = $0 { true } else { false } }) else { Issue.record("no fstab write"); return }
        #expect(String(decoding: u.payload(), as: UTF8.self) == "/dev/xvdf /srv ext4 defaults,nofail 0 0\n")
        #expect(change.undo.first == .unmount(mountPoint: "/srv"))
        f.file("/etc/fstab", .file("/dev/xvdf /srv ext4 defaults,nofail 0 0\n"))
        f.raw(MountsProbe.key, "/dev/xvdf /srv ext4 rw,relatime 0 0\n")
        #expect(try f.plan(step).isSatisfied)
        f.raw(MountsProbe.key, "/dev/xvdg /srv ext4 rw 0 0\n")
        #expect(throws: StepRefusal.self) { try f.plan(step) }
    }
}

@Suite struct UploadAndCommandTests {
    @Test func equalChecksumSendsNothing() throws {
        let bytes = Data((0..<5000).map { UInt8($0 % 251) })
        var f = FactFixtures()
        f.file("/usr/local/bin/ccr", FileState(kind: .file, mode: "755", owner: "root", group: "root", size: bytes.count, sha256: SHA256Digest.hex(bytes)), content: false)
        #expect(try f.plan(Upload(bytes, to: "/usr/local/bin/ccr", mode: "0755")).isSatisfied)
    }

    @Test func differentChecksumUploadsAndKeepsTheOldBinaryOnTheHost() throws {
        let bytes = Data("new binary".utf8)
        var f = FactFixtures()
        f.file("/usr/local/bin/ccr", FileState(kind: .file, mode: "755", owner: "root", group: "root", size: 3, sha256: "00"), content: false)
        let change = try #require(try f.plan(Upload(bytes, to: "/usr/local/bin/ccr", mode: "755")).change)
        #expect(change.commands.first == "mkdir -p /var/lib/ccrun/backup/R1 && chmod 700 /var/lib/ccrun/backup/R1 && cp -p /usr/local/bin/ccr /var/lib/ccrun/backup/R1/%usr%local%bin%ccr")
        // The copy is checked against the digest sent before it replaces the binary, and its
        // digest recorded for the next run's probe.
        let finish = try #require(change.commands.last)
        #expect(finish.contains("s=$(sha256sum < /usr/local/bin/.ccr.ccrun-tmp | cut -d' ' -f1)\nif [ \"$s\" != \(SHA256Digest.hex(bytes)) ]"))
        #expect(finish.contains("chown root:root /usr/local/bin/.ccr.ccrun-tmp && chmod 755 /usr/local/bin/.ccr.ccrun-tmp && mv -f /usr/local/bin/.ccr.ccrun-tmp /usr/local/bin/ccr || exit $?"))
        #expect(finish.contains("> /var/lib/ccrun/digests/\(SHA256Digest.hex("/usr/local/bin/ccr"))"))
    }

    @Test func guardedCommandHonoursCreatesAndUnless() throws {
        let step = GuardedCommand(id: "schema", "load schema", command: "ccr init-db", creates: "/var/lib/ccr/.initialised", undo: "rm -f /var/lib/ccr/.initialised")
        var f = FactFixtures()
        f.raw(FileProbe.existsKey("/var/lib/ccr/.initialised"), "yes")
        #expect(try f.plan(step).isSatisfied)
        f.raw(FileProbe.existsKey("/var/lib/ccr/.initialised"), "no")
        let change = try #require(try f.plan(step).change)
        #expect(change.commands == ["( ccr init-db ) || exit $?\n[ -e /var/lib/ccr/.initialised ] || { echo 'the command ran but did not create /var/lib/ccr/.initialised' >&2; exit 1; }"])
        #expect(change.undo == [.runScript(summary: "undo cmd:schema: rm -f /var/lib/ccr/.initialised", script: "rm -f /var/lib/ccr/.initialised")])

        let u = GuardedCommand(id: "u", "user ccr", command: "useradd ccr", unless: "id ccr")
        var g = FactFixtures()
        g.raw("cond:id ccr", "uid=999(ccr)", status: 0)
        #expect(try g.plan(u).isSatisfied)
        g.raw("cond:id ccr", "", status: 1)
        #expect(try g.plan(u).change?.undo == [.irreversible(reason: "no undo command given for cmd:u")])
    }

    @Test func sqlScriptMasksSecretsAndHonoursUnless() throws {
        let pw = Secret(label: "ccr-db", value: "PLANTED-sql-pw")
        let admin = DatabaseEndpoint(host: "198.51.100.10", user: "root", password: Secret(label: "admin", value: "PLANTED-admin"))
        let step = SQLScript(id: "user", "database user ccr", on: admin,
                             script: "CREATE USER 'ccr'@'%' IDENTIFIED BY '\(pw)';",
                             unless: "SELECT 1 FROM mysql.user WHERE user='ccr'", undo: "DROP USER 'ccr'@'%';")
        var f = FactFixtures()
        let key = try #require(step.facts.first?.key)
        f.raw(key, "0")
        let change = try #require(try f.plan(step).change)
        let shown = (change.commands + [change.diff ?? ""] + change.actions.map(\.summary) + [step.description, step.fingerprint, "\(step)"]).joined()
        #expect(!shown.contains("PLANTED"))
        #expect(shown.contains("IDENTIFIED BY '********(ccr-db)'"))
        f.raw(key, "1")
        #expect(try f.plan(step).isSatisfied)
    }
}
