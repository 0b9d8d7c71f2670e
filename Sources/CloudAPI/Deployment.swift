import LeanFoundation
import StepKit

/// A `ccrun aws` run as it goes, made into StepKit's `RunReport` at the end: the account is the
/// report's one host (`aws-REGION`, as in the journal), each resource one of its steps, and the
/// API requests its round trips. `plan` is a dry-run.
struct AccountRun {
    let command: String
    var runId: String
    let mode: RunMode
    let resumed: Bool
    var steps: [StepReport] = []
    /// What stopped the run (credentials, the account unreachable, a failed resource).
    var failure: Failure?
    var notes: [String] = []

    init(command: String, runId: String = RunID.make(), mode: RunMode, resumed: Bool = false) {
        self.command = command; self.runId = runId; self.mode = mode; self.resumed = resumed
    }

    mutating func add(_ id: String, _ phase: Phase, _ state: StepState, changes: [String] = [], message: String? = nil,
                      seconds: Double, failure: Failure? = nil) {
        steps.append(StepReport(index: steps.count, id: id, description: id, state: state, seconds: seconds, actions: changes,
                                message: message, failure: failure, phase: phase.rawValue))
    }

    func report(account: String, requests: Int, seconds: Double) -> RunReport {
        RunReport(runbook: "aws-" + command, runId: runId, mode: mode, resumed: resumed,
                  hosts: [HostReport(host: account, runId: runId, mode: mode, steps: steps, failure: failure, seconds: seconds,
                                     roundTrips: requests, notes: notes)])
    }
}

extension RunReport {
    /// `ccrun aws`'s text: one line per resource, its changes indented, then a summary line
    /// (`aws apply: 3 changed in 1.20 s (41 API requests, run ...)`), notes and the error.
    public func awsText() -> String {
        let command = runbook.hasPrefix("aws-") ? String(runbook.dropFirst(4)) : runbook
        let account = hosts.first
        let steps = account?.steps ?? []
        var out: [String] = []
        if resumed { out.append("aws: resuming run \(runId) (it stopped before finishing)") }
        for s in steps {
            out.append("aws: \(s.state.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(s.id)")
            for c in s.actions { out.append("    \(c)") }
            if let m = s.message { out.append("    \(m)") }
        }
        var counts: [String] = []
        for st in [StepState.ok, .changed, .wouldChange, .depends, .failed, .skipped] {
            let n = steps.filter { $0.state == st }.count
            if n > 0 { counts.append("\(n) \(st.rawValue)") }
        }
        out.append("aws \(command): " + (counts.isEmpty ? "nothing" : counts.joined(separator: ", "))
                   + String(format: " in %.2f s (%d API requests, run %@)", account?.seconds ?? 0, account?.roundTrips ?? 0, runId))
        for n in account?.notes ?? [] { out.append("aws: \(n)") }
        if let failure = account?.failure { out.append("aws: error (\(failure.kind.rawValue)): \(failure.message)") }
        return out.joined(separator: "\n")
    }
}

/// What later commands need from the account (`ccrun database` reads the RDS endpoint here).
public struct DeploymentOutputs: Codable, Sendable {
    public var region: String
    public var databaseEndpoint: String?
    public var databaseAddress: String?
    public var databasePort: Int?
    /// RDS status ("available" once usable); nil when the instance does not exist.
    public var databaseStatus: String?
    public var instances: [String: OutputInstance]
    public var loadBalancers: [String: String]
    public var images: [String: String]

    public struct OutputInstance: Codable, Sendable {
        public var id: String
        public var privateIp: String?
        /// EC2 state ("running", "pending", "stopped"); only running instances can be configured.
        public var state: String?
    }

    public static func load(_ path: String) throws -> DeploymentOutputs {
        guard let d = FileManager.default.contents(atPath: path) else { throw CloudError.unexpected("no outputs at \(path): run ccrun aws apply first") }
        return try JSONDecoder().decode(DeploymentOutputs.self, from: d)
    }
}

/// The whole AWS half of the guide: resources in dependency order, and the plan, apply and
/// destroy passes over them with a write-ahead journal (StepKit's `LocalJournal`).
public struct Deployment: Sendable {
    public let blueprint: Blueprint
    /// In apply order (dependencies first).
    public let resources: [any CloudResource]
    /// Destroy's order: the reverse, except that the autoscaling groups go before the retired
    /// launch configurations (one in use cannot be deleted) and classic load balancers.
    public let destroyOrder: [any CloudResource]

    public init(blueprint: Blueprint) {
        self.blueprint = blueprint
        var r: [any CloudResource] = []
        r += blueprint.securityGroups.map(SecurityGroupResource.init)
        r += blueprint.securityGroups.map(SecurityGroupRulesResource.init)
        r.append(DatabaseResource(spec: blueprint.database))
        r += blueprint.instances.map(InstanceResource.init)
        r.append(VolumeResource(spec: blueprint.volume))
        r += blueprint.images.map(ImageResource.init)
        r.append(TerminationProtectionResource(instanceName: blueprint.protectedInstance))
        r += blueprint.targetGroups.map(TargetGroupResource.init)
        r += blueprint.loadBalancers.map(LoadBalancerResource.init)
        r += blueprint.autoScaling.map { LaunchTemplateResource(spec: $0.launchTemplate) }
        let groups: [any CloudResource] = blueprint.autoScaling.map(AutoScalingGroupResource.init) + blueprint.autoScaling.map(ScalingPolicyResource.init)
        // What an earlier ccrun made, removed once the new objects serve (docs/aws.md, migration).
        let retired: [any CloudResource] = blueprint.autoScaling.map(RetiredClassicLoadBalancerResource.init)
            + blueprint.autoScaling.map(RetiredLaunchConfigurationsResource.init)
        resources = r + groups + retired
        destroyOrder = groups.reversed() + retired.reversed() + r.reversed()
    }

    public func resources(in phases: Set<Phase>) -> [any CloudResource] { resources.filter { phases.contains($0.phase) } }
}

/// Runs a deployment against one account.
public struct DeploymentRunner: Sendable {
    public var deployment: Deployment
    public var client: AWSQueryClient
    public var journal: LocalJournal
    public var outputsPath: String
    public var log: @Sendable (String) -> Void
    /// Told after each call of an apply (`RunPoint.afterCall`): a no-op in production; the
    /// process-kill tests stop ccrun there (a test build's `SignalStopObserver`).
    public var observer: any RunObserver

    public init(deployment: Deployment, client: AWSQueryClient, journal: LocalJournal, outputsPath: String,
                observer: any RunObserver = QuietRunObserver(), log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.deployment = deployment; self.client = client; self.journal = journal; self.outputsPath = outputsPath
        self.observer = observer; self.log = log
    }

    var journalHost: String { "aws-\(client.connection.region)" }
    var scrubber: SecretScrubber { SecretScrubber(client.connection.credentials.secrets + deployment.blueprint.secrets) }

    func context() -> CloudContext { CloudContext(api: CloudAPI(client: client), blueprint: deployment.blueprint, log: log) }

    /// Checks the credentials with one read-only call before anything else, so wrong keys
    /// fail with a clear message and nothing is created.
    func verifyCredentials() async throws {
        _ = try await client.callerIdentity()
    }

    public func plan(phases: Set<Phase>) async -> RunReport {
        let start = Date()
        var report = AccountRun(command: "plan", mode: .dryRun)
        do {
            try await verifyCredentials()
            let ctx = context()
            for r in deployment.resources(in: phases) {
                let t = Date()
                do {
                    add(r, try await r.plan(ctx), seconds: Date().timeIntervalSince(t), to: &report)
                } catch {
                    report.add(r.id, r.phase, .failed, message: scrubber.scrub("\(error)"), seconds: Date().timeIntervalSince(t),
                               failure: Failure(error, scrubber: scrubber))
                }
            }
        } catch { report.failure = Failure(error, scrubber: scrubber) }
        return await finish(report, start)
    }

    /// A plan's line in the report: its calls as `PlannedCall.text` shows them.
    func add(_ r: any CloudResource, _ plan: CallPlan, seconds: Double, to report: inout AccountRun) {
        switch plan {
        case let .calls(calls) where calls.isEmpty: report.add(r.id, r.phase, .ok, seconds: seconds)
        case .satisfied: report.add(r.id, r.phase, .ok, seconds: seconds)
        case let .calls(calls): report.add(r.id, r.phase, .wouldChange, changes: calls.map { scrubber.scrub($0.text) }, seconds: seconds)
        case let .depends(why): report.add(r.id, r.phase, .depends, message: why, seconds: seconds)
        }
    }

    func finish(_ r: AccountRun, _ start: Date) async -> RunReport {
        r.report(account: journalHost, requests: await client.requestCount, seconds: Date().timeIntervalSince(start))
    }

    /// Applies the phases in order. A run that stopped before finishing (its journal has no
    /// `finished` record) is resumed: its run id is reused and every resource is observed
    /// again, so what the dead run did is found, not redone.
    public func apply(phases: Set<Phase>, command: String) async -> RunReport {
        let start = Date()
        let runbook = "aws-" + command
        let previous = journal.runs(host: journalHost).first { $0.runbook == runbook }
        let resume = previous.flatMap { $0.isFinished || $0.isRolledBack ? nil : $0.runId }
        var report = AccountRun(command: command, runId: resume ?? RunID.make(), mode: .apply, resumed: resume != nil)
        let runId = report.runId
        do {
            try await verifyCredentials()
            try journal.append(JournalRecord(kind: .run, runId: runId, host: journalHost, runbook: runbook, mode: "apply"))
            let ctx = context()
            // Each journalled call's number in the run; a resumed run goes on from the dead one's.
            var callNumber = previous.flatMap { resume == nil ? nil : $0.records.compactMap { $0.kind == .intent ? $0.index : nil }.max() } ?? 0
            for r in deployment.resources(in: phases) {
                let t = Date()
                do {
                    let plan = try await r.plan(ctx)
                    if case let .depends(why) = plan { throw CloudError.unexpected("cannot apply yet: \(why)") }
                    guard case let .calls(calls) = plan, !calls.isEmpty else {
                        add(r, plan, seconds: Date().timeIntervalSince(t), to: &report)
                        continue
                    }
                    let lines = calls.map(\.text)
                    var undoes = try await CallUndoJournal(r, calls: calls, ctx: ctx)
                    // Exactly the calls planned above, in order: no second reading of the account. Each
                    // is write-ahead: its intent (the call, and what undoes it) is on disk before it runs.
                    var done: [String] = []
                    for (n, call) in calls.enumerated() {
                        if let undo = undoes.undo(of: call) {
                            callNumber += 1
                            try journal.append(JournalRecord(kind: .intent, runId: runId, host: journalHost, stepId: r.id, index: callNumber,
                                                             description: scrubber.scrub(call.text), externalUndo: try undo.encoded()))
                        }
                        done.append(try await call.perform(ctx))
                        observer.reached(.afterCall(step: r.id, call: n + 1))
                    }
                    try journal.append(JournalRecord(kind: .done, runId: runId, host: journalHost, stepId: r.id,
                                                     description: scrubber.scrub(done.joined(separator: "; ")), status: "ok"))
                    report.add(r.id, r.phase, .changed, changes: (done.isEmpty ? lines : done).map(scrubber.scrub), seconds: Date().timeIntervalSince(t))
                } catch {
                    let failure = Failure(error, scrubber: scrubber), msg = failure.message
                    try? journal.append(JournalRecord(kind: .done, runId: runId, host: journalHost, stepId: r.id, description: msg, status: "failed"))
                    report.add(r.id, r.phase, .failed, message: msg, seconds: Date().timeIntervalSince(t), failure: failure)
                    throw AlreadyReported()
                }
            }
            if let endpoint = try await writeOutputs(ctx).databaseEndpoint { report.notes.append("RDS endpoint \(endpoint)") }
            try journal.append(JournalRecord(kind: .finished, runId: runId, host: journalHost, status: "ok"))
        } catch is AlreadyReported {
            report.failure = Failure(report.steps.last?.failure?.kind ?? .internal,
                                     "stopped at the failed resource; fix the cause and run again (the run resumes)")
        } catch { report.failure = Failure(error, scrubber: scrubber) }
        return await finish(report, start)
    }

    struct AlreadyReported: Error {}

    /// The undo each call of one resource journals before it runs. The resource's own undo is
    /// read from the account before the resource's first call, and only when a call needs it; for
    /// an object the apply creates (`.delete`) only the first call journals it: the delete undoes
    /// the later calls on it too.
    struct CallUndoJournal {
        private let resourceUndo: CloudUndo?
        private var deleteJournalled = false

        init(_ resource: any CloudResource, calls: [PlannedCall], ctx: CloudContext) async throws {
            resourceUndo = calls.contains { $0.undo == .resource } ? try await resource.undo(ctx) : nil
        }

        /// What to journal before `call`; nil: nothing (a read, or covered by the delete).
        mutating func undo(of call: PlannedCall) -> CloudUndo? {
            switch call.undo {
            case .nothing: return nil
            case let .exactly(undo): return undo
            case .resource:
                guard let undo = resourceUndo, undo == .delete else { return resourceUndo }
                defer { deleteJournalled = true }
                return deleteJournalled ? nil : .delete
            }
        }
    }

    /// Deletes everything the blueprint describes that exists, in reverse dependency order.
    /// Keeps going past a failure so one stuck resource does not leave the rest behind.
    public func destroy() async -> RunReport {
        let start = Date()
        var report = AccountRun(command: "destroy", mode: .destroy)
        do {
            try await verifyCredentials()
            try journal.append(JournalRecord(kind: .run, runId: report.runId, host: journalHost, runbook: "aws-destroy", mode: "destroy"))
            let ctx = context()
            for r in deployment.destroyOrder {
                let t = Date()
                do {
                    try journal.append(JournalRecord(kind: .intent, runId: report.runId, host: journalHost, stepId: r.id, description: "delete \(r.id)"))
                    let done = try await r.destroy(ctx)
                    try journal.append(JournalRecord(kind: .undone, runId: report.runId, host: journalHost, stepId: r.id, description: done.joined(separator: "; ")))
                    report.add(r.id, r.phase, done.isEmpty ? .ok : .changed, changes: done, seconds: Date().timeIntervalSince(t))
                } catch {
                    report.add(r.id, r.phase, .failed, message: scrubber.scrub("\(error)"), seconds: Date().timeIntervalSince(t),
                               failure: Failure(error, scrubber: scrubber))
                }
            }
            try journal.append(JournalRecord(kind: .finished, runId: report.runId, host: journalHost, status: "destroyed"))
            try? FileManager.default.removeItem(atPath: outputsPath)
        } catch { report.failure = Failure(error, scrubber: scrubber) }
        return await finish(report, start)
    }

    /// Undoes the last `apply` or `images` run that changed something, from the undo its intents
    /// journalled call by call: the calls that ran (and at most the one a crash cut short) are
    /// undone, latest first, resource by resource. What the run created is deleted (which undoes
    /// every later call on it), rules it authorized are revoked and those it revoked authorized
    /// again, what it changed on objects it found is put back as it read it before; what it
    /// changed in a way ccrun cannot put back is reported. Each undone call is journalled, so an
    /// interrupted rollback is simply run again.
    public func rollback() async -> RunReport {
        let start = Date()
        var report = AccountRun(command: "rollback", runId: "none", mode: .rollback)
        do {
            try await verifyCredentials()
            guard let last = journal.runs(host: journalHost).first(where: {
                ($0.runbook == "aws-apply" || $0.runbook == "aws-images") && $0.hasIntents && !$0.isRolledBack
            }), let runId = last.runId else { return await finish(report, start) }
            report.runId = runId
            let ctx = context()
            for (stepId, intents) in Self.pendingUndo(last) {
                let t = Date()
                let resource = deployment.resources.first { $0.id == stepId }
                func step(_ state: StepState, _ changes: [String], _ message: String? = nil, failure: Failure? = nil) {
                    report.add(stepId, resource?.phase ?? .base, state, changes: changes.map(scrubber.scrub), message: message.map(scrubber.scrub),
                               seconds: Date().timeIntervalSince(t), failure: failure)
                }
                let undoes = intents.map { $0.externalUndo.flatMap { try? CloudUndo.decode($0) } }
                guard let r = resource, !undoes.contains(where: { $0 == nil }) else {
                    let why = "no undo data for \(stepId) in run \(runId) (not in this inventory, or journalled by an older ccrun)"
                    step(.failed, [], why, failure: Failure(.refused, why))
                    continue
                }
                do {
                    var done: [String] = [], cannot: [String] = []
                    // Deleting what the run created undoes every call it made on it.
                    let plan: [CloudUndo] = undoes.contains(.delete) ? [.delete] : undoes.compactMap { $0 }
                    var performed: Set<CloudUndo> = []
                    for undo in plan where performed.insert(undo).inserted {
                        switch undo {
                        case let .irreversible(why): cannot.append("cannot undo: \(why)")
                        case .delete: done += try await r.deleteCreated(ctx)
                        default:
                            guard let restored = try await r.restore(undo, ctx) else { throw CloudError.unexpected("\(stepId) cannot \(undo.summary)") }
                            done += restored
                        }
                    }
                    for intent in intents {
                        try journal.append(JournalRecord(kind: .undone, runId: runId, host: journalHost, stepId: stepId, index: intent.index,
                                                         description: scrubber.scrub(intent.description ?? stepId)))
                    }
                    if done.isEmpty && !cannot.isEmpty { step(.skipped, [], cannot.joined(separator: "; ")) } else {
                        step(done.isEmpty ? .ok : .changed, done, cannot.isEmpty ? nil : cannot.joined(separator: "; "))
                    }
                } catch {
                    let failure = Failure(error, scrubber: scrubber)
                    step(.failed, [], failure.message, failure: failure)
                }
            }
            if !report.steps.contains(where: { $0.state == .failed }) {
                try journal.append(JournalRecord(kind: .rolledBack, runId: runId, host: journalHost, status: "rolled back"))
                try? FileManager.default.removeItem(atPath: outputsPath)
            }
        } catch { report.failure = Failure(error, scrubber: scrubber) }
        return await finish(report, start)
    }

    /// The run's journalled calls not undone yet, grouped by resource: resources latest first,
    /// each one's calls latest first. An `undone` record without a call number (journalled
    /// per resource by an earlier ccrun) covers all of its resource's calls.
    static func pendingUndo(_ run: RunHistory) -> [(stepId: String, intents: [JournalRecord])] {
        let undone = run.records.filter { $0.kind == .undone }
        var out: [(stepId: String, intents: [JournalRecord])] = []
        for intent in run.records.reversed() where intent.kind == .intent {
            guard let stepId = intent.stepId,
                  !undone.contains(where: { $0.stepId == stepId && ($0.index == nil || $0.index == intent.index) }) else { continue }
            if let i = out.firstIndex(where: { $0.stepId == stepId }) { out[i].intents.append(intent) } else { out.append((stepId, [intent])) }
        }
        return out
    }

    /// What exists now, read from the account (no file written): `ccrun deploy` uses it to
    /// find the new instances' addresses and the RDS endpoint, also when its aws phase is
    /// skipped on resume or only planned in a dry-run.
    public func currentOutputs() async throws -> DeploymentOutputs {
        try await verifyCredentials()
        return try await observeOutputs(context())
    }

    func observeOutputs(_ ctx: CloudContext) async throws -> DeploymentOutputs {
        let api = ctx.api, bp = deployment.blueprint
        var out = DeploymentOutputs(region: client.connection.region, instances: [:], loadBalancers: [:], images: [:])
        if let db = try await api.database(bp.database.identifier) {
            out.databaseAddress = db.endpointAddress; out.databasePort = db.endpointPort; out.databaseStatus = db.status
            if let a = db.endpointAddress { out.databaseEndpoint = "\(a):\(db.endpointPort ?? 3306)" }
        }
        for i in bp.instances {
            if let o = try await ctx.instance(i.name) { out.instances[i.role] = .init(id: o.id, privateIp: o.privateIp, state: o.state) }
        }
        for l in bp.loadBalancers { if let o = try await api.loadBalancer(l.name) { out.loadBalancers[l.name] = o.dnsName } }
        for i in bp.images { if let o = try await ctx.image(i.name) { out.images[i.name] = o.id } }
        return out
    }

    func writeOutputs(_ ctx: CloudContext) async throws -> DeploymentOutputs {
        let out = try await observeOutputs(ctx)
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let url = URL(fileURLWithPath: outputsPath)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try e.encode(out).write(to: url, options: .atomic)
        return out
    }
}
