import LeanFoundation
import Runbooks
import StepKit

/// What the lab adds to the deployment's inventory type (Runbooks' `DeploymentInventory`): the
/// lab writes the very type every ccrun command reads (contract: docs/inventory.md), so the two
/// cannot drift apart. Secrets are not in it, only paths to 0600 files.
extension DeploymentInventory {
    /// Host variable naming a host's init kind when it is not the default (sysv); `Lab.existing`
    /// reads it back so later `lab` commands treat the hosts as they were made.
    public static let initVar = "labInit"

    /// The init kind the hosts of this inventory were made with.
    public var hostInit: LabHostInit {
        hosts.values.compactMap { $0.vars?[Self.initVar].flatMap(LabHostInit.init(rawValue:)) }.first ?? .sysv
    }

    /// True when the inventory holds the fleet's hosts (`ccrun lab up --fleet`).
    public var hasFleet: Bool { LabSpec.fleetHostNames.allSatisfy { hosts[$0] != nil } }

    /// Builds the inventory of a lab described by `spec`.
    static func make(for spec: LabSpec) -> DeploymentInventory {
        var hosts: [String: Inventory.Host] = [:]
        for (index, name) in spec.hostNames.enumerated() {
            var vars = ["netns": spec.namespace(of: name), "hostname": name]
            if spec.blockDeviceHosts.contains(name) { vars["dataDevice"] = "/dev/xvdf" }
            if spec.hostInit != .sysv { vars[Self.initVar] = spec.hostInit.rawValue }
            // The machine's kernel has no nfsd, and a systemd host's default is the kernel
            // server (docs/lab.md "NFS in the lab"): the lab's NFS server is nfs-ganesha.
            if spec.hostInit == .systemd, name == spec.nfsServerHost { vars["nfsServerKind"] = "ganesha" }
            hosts[name] = Inventory.Host(address: spec.address(ofHostAt: index), port: 22, user: "root",
                                         identityFile: spec.identityFile, knownHosts: spec.knownHostsFile,
                                         roles: [spec.role(of: name)], vars: vars)
        }
        return DeploymentInventory(
            hosts: hosts,
            sudoUser: Inventory.SudoUser(user: "deploy", identityFile: spec.identityFile),
            database: Database(host: spec.address(ofHostAt: 0), port: spec.mariaDBPort,
                               adminUser: spec.mariaDBAdminUser, adminPasswordFile: spec.dbPasswordFile),
            nfsServer: spec.nfsServerHost,
            aws: AWS(endpoint: spec.motoEndpoint, region: spec.region, credentialsFile: spec.awsCredentialsFile),
            aptRepository: "http://\(spec.bridgeAddress)/")
    }
}
