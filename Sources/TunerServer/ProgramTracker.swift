import ServerFiles

/// Decides where one program ends and the next begins, from the XDS program names a tuner sends.
///
/// The rule (issue 4): a new program starts when the program name changes from one name to
/// another. The first name after none names the program already being recorded; it does not
/// split it (a tuner connects mid-program and learns its name some seconds later). The same name
/// rebroadcast changes nothing.
public struct ProgramTracker: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Same program, nothing to do.
        case unchanged
        /// The current (so far unnamed) program gets its name.
        case nameCurrent(String)
        /// The current program ends; a new one with this name begins.
        case startNew(String)
    }

    public private(set) var currentName: String?

    public init(currentName: String? = nil) { self.currentName = currentName }

    public mutating func observe(programName raw: String) -> Decision {
        let name = raw.trimmingWhitespace()
        guard !name.isEmpty else { return .unchanged }
        switch currentName {
        case nil:
            currentName = name
            return .nameCurrent(name)
        case name?:
            return .unchanged
        default:
            currentName = name
            return .startNew(name)
        }
    }
}
