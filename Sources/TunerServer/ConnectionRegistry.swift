import NIOCore
import Synchronization

/// The open tuner channels: enforces the connection limit and lets shutdown close them all.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// Adds `channel` unless `limit` channels are already registered.
    func add(_ channel: any Channel, limit: Int) -> Bool {
        channels.withLock { all in
            guard all.count < limit else { return false }
            all[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var count: Int { channels.withLock { $0.count } }

    var all: [any Channel] { channels.withLock { Array($0.values) } }
}
