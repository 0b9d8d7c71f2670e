// swift-tools-version: 6.1
//
// Two products share this package:
//   ccrun - runbook-as-code for the CC Repository deployment guide
//   ccr   - the caption repository server shipped to repository nodes
//
// Layering (see README "Architecture"): the engine (StepKit) knows nothing about
// CC Repository; Runbooks know nothing about libssh2; Captions imports no I/O; Web reads what
// the tuner server writes (the config file, the archive) through ServerFiles, never through
// TunerServer, so `ccr web` links no part of the tuner server.
import PackageDescription

/// OpenSSL and zlib, which the MariaDB client and libssh2 archives call. ccr is shipped to hosts
/// that install little for it (Amazon Linux 2023 among them): beyond glibc, libstdc++ and libgcc_s
/// it needs only OpenSSL 3's libssl.so.3 and libcrypto.so.3, which the runbooks' MariaDB
/// Connector/C package depends on (AL2023's openssl-libs, Debian 12's libssl3; OpenSSH needs them
/// too), so the distribution's security fixes reach ccr's database TLS, and the 3.7 MB OpenSSL
/// archive is not in every host's download (issue 19). zlib stays linked in (its archive is small).
/// ccrun and the tests load libcurl, which Debian cannot link statically (no archives of its
/// GSSAPI, LDAP, RTMP, PSL and nghttp2 dependencies) and which loads the shared OpenSSL anyway:
/// they link the shared libraries, so one OpenSSL serves the whole process.
let hostOpenSSL: [LinkerSetting] = ["ssl", "crypto", ":libz.a"].map { .linkedLibrary($0) }
let sharedOpenSSL: [LinkerSetting] = ["ssl", "crypto", "z"].map { .linkedLibrary($0) }

/// The symbols `GlibcCompat` redirects to older versions (see Sources/GlibcCompat/compat.c).
let olderSymbolVersions: [LinkerSetting] = [
    .unsafeFlags(["hypot", "hypotf", "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE"]
        .flatMap { ["-Xlinker", "--wrap=\($0)"] }),
]

/// Modules off ccr's hot path (the web UI, the store's queries) build for size in release: every
/// host downloads ccr (issue 19). TunerServer and Captions, which every caption byte goes through, keep -O.
let offHotPath: [SwiftSetting] = [.unsafeFlags(["-Osize"], .when(configuration: .release))]

let package = Package(
    name: "ccrun",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ccrun", targets: ["ccrun"]),
        .executable(name: "ccr", targets: ["ccr"]),
        /// The tuner benchmark bench/ccr runs; not shipped.
        .executable(name: "ccr-bench", targets: ["ccr-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        /// No traits: FullFoundation and ConfigurationSupport bring in full Foundation, whose ICU data is
        /// 34 MB of the binary; ccr web uses neither (URL-encoded forms, swift-configuration).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.10.0", traits: []),
        /// NIOHTTPTypes: the request/response parts `ccr web`'s connection guards see (Hummingbird uses it too).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        /// Property-based tests of the ccr protocol parser and 608 decoder (tests only).
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // C libraries from Debian packages. SQLite, the MariaDB client and libssh2 link their static
        // archives (module.modulemap `link ":libX.a"`, no pkg-config, whose flags name the shared
        // library): the hosts need no runtime package for them. Their OpenSSL and zlib come from
        // `hostOpenSSL` or `sharedOpenSSL` below, chosen per executable.
        .systemLibrary(name: "CLibSSH2", providers: [.apt(["libssh2-1-dev"])]),
        /// libcurl's header (libcurl4-openssl-dev) and the library itself loaded on first use, not
        /// linked: only the AWS commands need it, and linking it made every ccrun start load ~30 libraries.
        .target(name: "CLibCurl", dependencies: []),
        .systemLibrary(name: "CMariaDB", providers: [.apt(["libmariadb-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        /// `__wrap_` functions binding the few symbols the static Swift runtime takes at too new a
        /// version (glibc 2.35, GLIBCXX_3.4.30) to older ones, so ccr and ccrun start on Amazon Linux 2023.
        .target(name: "GlibcCompat", publicHeadersPath: ".", linkerSettings: olderSymbolVersions),

        // ---- ccrun: the deployer ----
        /// FoundationEssentials (no ICU: issue 19) plus the few Foundation calls ccrun's modules make.
        .target(name: "LeanFoundation", dependencies: []),
        /// SSH transport over libssh2: sessions, commands, SFTP, known_hosts, ssh_config.
        .target(name: "Transport", dependencies: ["LeanFoundation", "CLibSSH2", "CCrypto"], linkerSettings: sharedOpenSSL),
        /// The step engine and its standard steps. Talks to hosts through the `RemoteHost` protocol.
        .target(name: "StepKit", dependencies: ["LeanFoundation", "CCrypto"], linkerSettings: sharedOpenSSL),
        /// The SQL client ccrun gives the engine for SQL steps (MariaDB Connector/C; MySQL 8 too).
        .target(name: "MariaDBClient", dependencies: ["LeanFoundation", "CMariaDB", "StepKit"], linkerSettings: sharedOpenSSL),
        /// Lab of real target hosts (network namespaces, sshd, local apt repo, MariaDB, moto). It
        /// writes Runbooks' `DeploymentInventory`, the inventory type every ccrun command reads.
        .target(name: "Lab", dependencies: ["LeanFoundation", "Runbooks", "StepKit"]),
        /// AWS API over libcurl with SigV4.
        .target(name: "CloudAPI", dependencies: ["LeanFoundation", "CLibCurl", "StepKit"]),
        /// The deployment guide as Swift code: one file per guide section.
        .target(name: "Runbooks", dependencies: ["LeanFoundation", "StepKit"], path: "Runbooks"),
        .executableTarget(name: "ccrun", dependencies: [
            "Transport", "StepKit", "MariaDBClient", "Lab", "CloudAPI", "Runbooks", "GlibcCompat", "LeanFoundation",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: [
            /// The process-kill tests' stop points (TestHooks): in debug builds only, never in what ships.
            .define("CCRUN_TEST_HOOKS", .when(configuration: .debug)),
        ]),

        // ---- ccr: the repository server ----
        /// RCWT, CEA-608, XDS and the srt/txt/ttxt writers. Pure values in, pure values out.
        .target(name: "Captions", dependencies: []),
        /// Metadata and caption lines: SQLite (embedded) or MariaDB/MySQL, with a durable spool.
        .target(name: "Store", dependencies: ["CSQLite", "CMariaDB", "Captions"], swiftSettings: offHotPath),
        /// What `ccr serve` and `ccr web` both read: the INI config file format and the archive's
        /// file names (ArchiveLayout). No I/O beyond the clock, no dependencies.
        .target(name: "ServerFiles", dependencies: []),
        /// The tuner-facing TCP server (CCExtractor's -sendto protocol) and the archive writer.
        .target(name: "TunerServer", dependencies: [
            "Captions", "Store", "ServerFiles",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The web UI and JSON API (Hummingbird), read-only over the store.
        .target(name: "Web", dependencies: [
            "Store", "Captions", "ServerFiles",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: offHotPath),
        .executableTarget(name: "ccr", dependencies: [
            "Captions", "Store", "TunerServer", "Web", "GlibcCompat", "LeanFoundation",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: hostOpenSSL),

        // ---- benchmarks: never in what ships ----
        /// Simulated tuners replaying a capture, and latency-probe tuners (bench/ccr, tests).
        .target(name: "TunerBench", dependencies: [
            "Captions", "TunerServer",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        /// `ccr-bench`: N tuners against `ccr serve`; RSS per tuner, CPU, live-feed latency.
        .executableTarget(name: "ccr-bench", dependencies: [
            "TunerBench", "TunerServer", "ServerFiles", "Store",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: hostOpenSSL),

        // ---- tests ----
        /// Shared test helpers: fixture lookup (../shared/fixtures), lab inventory, temp dirs, and
        /// `FactFixtures` (probe answers for plan tests, StepKit's and the runbooks' golden plans).
        .target(name: "SupportKit", dependencies: ["StepKit"], path: "Tests/SupportKit"),
        .testTarget(name: "CaptionsTests", dependencies: [
            "Captions", "SupportKit", .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "SupportKit"]),
        .testTarget(name: "StepKitTests", dependencies: ["StepKit", "Transport", "SupportKit"]),
        .testTarget(name: "LabTests", dependencies: ["Lab", "Runbooks", "StepKit", "Transport", "SupportKit"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Captions", "SupportKit"]),
        .testTarget(name: "TunerServerTests", dependencies: [
            "TunerServer", "TunerBench", "ServerFiles", "Store", "Captions", "SupportKit",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "RunbookTests", dependencies: ["Runbooks", "StepKit", "MariaDBClient", "Transport", "SupportKit"]),
        .testTarget(name: "CloudAPITests", dependencies: [
            "CloudAPI", "StepKit", "SupportKit", .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "LeanFoundationTests", dependencies: [
            "LeanFoundation", .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        /// bench/peers (Ansible, pyinfra) and ccrun agree on the lab: each finds nothing to change after the others.
        .testTarget(name: "PeerTests", dependencies: ["SupportKit"]),
        /// TunerServer only for BrowserTests, which watch a real `ccr serve` feed the page.
        .testTarget(name: "WebTests", dependencies: [
            "Web", "Store", "Captions", "ServerFiles", "TunerServer", "SupportKit",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
