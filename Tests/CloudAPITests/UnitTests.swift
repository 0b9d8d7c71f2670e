@testable import CloudAPI
import Foundation
import StepKit
import Testing

@Suite("CloudAPI units")
struct CloudAPIUnitTests {
    @Test("profiles: env first, then the credentials file, then [profile X] in config")
    func credentialResolution() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-cred-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=s2\n"
            .write(to: dir.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        try "[profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s3\nregion = eu-west-1\n"
            .write(to: dir.appendingPathComponent(".aws/config"), atomically: true, encoding: .utf8)
        let base = AWSEnvironment(environment: [:], home: dir.path)
        #expect(try base.credentials(inventoryFile: nil, inventoryProfile: nil).accessKeyId == "AKIDDEFAULT")
        #expect(try AWSEnvironment(environment: ["AWS_PROFILE": "ops"], home: dir.path).credentials(inventoryFile: nil, inventoryProfile: nil).accessKeyId == "AKIDOPS")
        #expect(try base.credentials(inventoryFile: nil, inventoryProfile: "cfg").accessKeyId == "AKIDCFG")
        #expect(try base.region(inventoryRegion: nil, inventoryProfile: "cfg", inventoryFile: nil) == "eu-west-1")
        let env = AWSEnvironment(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "topsecret", "AWS_REGION": "ap-south-1"], home: dir.path)
        let c = try env.credentials(inventoryFile: nil, inventoryProfile: nil)
        #expect(c.accessKeyId == "AKIDENV")
        #expect(!"\(c.secretAccessKey)".contains("topsecret"))
        #expect(try env.region(inventoryRegion: "us-east-1", inventoryProfile: nil, inventoryFile: nil) == "ap-south-1")
        #expect(throws: CloudError.self) { try base.credentials(inventoryFile: nil, inventoryProfile: "missing") }
    }

    @Test("endpoint: service variable, then AWS_ENDPOINT_URL, then inventory, then AWS")
    func endpoints() {
        let e = AWSEnvironment(environment: ["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:1/", "AWS_ENDPOINT_URL": "http://127.0.0.1:2"], home: "/nonexistent")
        #expect(e.endpoint(for: .ec2, region: "us-east-1", inventoryEndpoint: "http://127.0.0.1:3") == "http://127.0.0.1:1")
        #expect(e.endpoint(for: .rds, region: "us-east-1", inventoryEndpoint: "http://127.0.0.1:3") == "http://127.0.0.1:2")
        let none = AWSEnvironment(environment: [:], home: "/nonexistent")
        #expect(none.endpoint(for: .elb, region: "us-west-2", inventoryEndpoint: nil) == "https://elasticloadbalancing.us-west-2.amazonaws.com")
    }

    @Test("form encoding matches the SDKs (space as +, reserved characters escaped)")
    func formEncoding() {
        #expect(FormEncoding.form([("GroupDescription", "CC NFS (server)/a&b=c~")]) == "GroupDescription=CC+NFS+%28server%29%2Fa%26b%3Dc~")
    }

    @Test("XML answers and errors parse into values")
    func xml() throws {
        let doc = "<Response><Errors><Error><Code>InvalidGroup.Duplicate</Code><Message>exists</Message></Error></Errors></Response>"
        let n = try XMLNode.parse(Data(doc.utf8))
        #expect(n.first("Code")?.text == "InvalidGroup.Duplicate")
        let list = try XMLNode.parse(Data("<a><groupSet><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item></groupSet></a>".utf8))
        #expect(list.list("groupSet").compactMap { $0.string("groupId") } == ["sg-1", "sg-2"])
    }

    @Test("the blueprint is the guide's tables; cc-tuners/cc-web admit only their LB's port")
    func blueprint() {
        let groups = Blueprint.securityGroups(adminCidr: "198.51.100.1/32", tunerServers: ["198.51.100.50", "198.51.100.51/32"])
        let table = Dictionary(uniqueKeysWithValues: groups.map { ($0.name, $0.rules.map(\.description).sorted()) })
        #expect(table == expectedRules)
    }
}
