import LeanFoundation

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
    /// What undoes this one call: journalled before it runs, so a rollback after a crash between
    /// two calls of a resource undoes exactly the calls that ran.
    public var undo: CallUndo
    /// Makes the call; returns the report line.
    let perform: @Sendable (CloudContext) async throws -> String

    /// `undo` nil: a read (a `Describe` wait) undoes nothing; any other call is undone by its
    /// resource's undo, read from the account before the apply (`CloudResource.undo`).
    init(_ service: AWSService, _ action: String, _ summary: String, undo: CallUndo? = nil,
         perform: @escaping @Sendable (CloudContext) async throws -> String) {
        self.service = service; self.action = action; self.summary = summary; self.perform = perform
        self.undo = undo ?? (action.hasPrefix("Describe") ? .nothing : .resource)
    }

    /// `+` adds, `-` removes, `~` changes or waits, as in the rest of the plan.
    public var text: String {
        let adds = ["Create", "Put", "Attach", "Authorize", "Run", "Register"], removes = ["Delete", "Detach", "Revoke", "Deregister"]
        let sign = adds.contains { action.hasPrefix($0) } ? "+" : removes.contains { action.hasPrefix($0) } ? "-" : "~"
        return "\(sign) \(service.displayName) \(action) \(summary)"
    }
}

/// What undoes one planned call.
public enum CallUndo: Sendable, Hashable {
    /// A read: nothing to undo, nothing journalled.
    case nothing
    /// The resource's undo (`CloudResource.undo`): for an object the apply creates, deleting it,
    /// which undoes the later calls on it too (a listener goes with its load balancer); for
    /// one it found, putting back what it read before the apply.
    case resource
    /// This call's own inverse (one rule authorized: revoke that rule).
    case exactly(CloudUndo)
}

/// What a resource finds: nothing to do, something missing first (an image of an instance not
/// yet created), or the calls to make.
public enum CallPlan: Sendable {
    case satisfied
    case depends(String)
    case calls([PlannedCall])
}
