import Foundation

/// One AWS call an apply will make, as `plan` lists it: "+ ELBv2 CreateLoadBalancer cc-web-alb (...)".
///
/// A resource's plan and its apply are the same list (mgmt's CheckApply): apply runs exactly the
/// calls of the plan it showed, in order, so what `ccrun aws plan` shows and what apply does
/// cannot drift apart. A call that needs what an earlier call made (a listener needs its load
/// balancer's ARN) looks it up when it runs.
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

/// What a resource finds: nothing to do, something missing first (an image of an instance not
/// yet created), or the calls to make.
public enum CallPlan: Sendable {
    case satisfied
    case depends(String)
    case calls([PlannedCall])
}
