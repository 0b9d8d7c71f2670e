import LeanFoundation

/// One AWS call an apply will make, as `plan` lists it: "+ ELBv2 CreateLoadBalancer cc-web-alb (...)".
///
/// A resource's plan and its apply are the same list (mgmt's CheckApply): apply reads the
/// account again, plans, and runs exactly the calls of that plan in order, so what `ccrun aws
/// plan` shows and what apply does cannot drift apart. A call that needs what an earlier call
/// made (a listener needs its load balancer's ARN) looks it up when it runs.
public struct PlannedCall: Sendable {
    public var service: AWSService
    public var action: String
    /// What the call is for, with the parameters a reader checks (never a secret).
    public var summary: String
    /// Makes the call; returns the report line.
    let perform: @Sendable (CloudContext) async throws -> String

    init(_ service: AWSService, _ action: String, _ summary: String, perform: @escaping @Sendable (CloudContext) async throws -> String) {
        self.service = service; self.action = action; self.summary = summary; self.perform = perform
    }

    /// `+` adds, `-` removes, `~` changes or waits, as in the rest of the plan.
    public var text: String {
        let adds = ["Create", "Put", "Attach", "Authorize", "Run", "Register"], removes = ["Delete", "Detach", "Revoke", "Deregister"]
        let sign = adds.contains { action.hasPrefix($0) } ? "+" : removes.contains { action.hasPrefix($0) } ? "-" : "~"
        return "\(sign) \(service.displayName) \(action) \(summary)"
    }
}

/// What a planned resource finds: nothing to do, something missing first, or the calls to make.
public enum CallPlan: Sendable {
    case satisfied
    case depends(String)
    case calls([PlannedCall])
}

/// A resource whose observe and apply both come from one `plan` of exact API calls.
protocol PlannedResource: CloudResource {
    func plan(_ ctx: CloudContext) async throws -> CallPlan
}

extension PlannedResource {
    func observe(_ ctx: CloudContext) async throws -> Observation {
        switch try await plan(ctx) {
        case .satisfied: return .satisfied
        case let .depends(why): return .depends(why)
        case let .calls(calls): return calls.isEmpty ? .satisfied : .change(calls.map(\.text))
        }
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        switch try await plan(ctx) {
        case .satisfied: return []
        case let .depends(why): throw CloudError.unexpected("\(id): cannot apply yet: \(why)")
        case let .calls(calls):
            var done: [String] = []
            for call in calls { done.append(try await call.perform(ctx)) }
            return done
        }
    }
}
