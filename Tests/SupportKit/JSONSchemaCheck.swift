import Foundation

/// Validates a `--json` document against its published schema (docs/schemas), with Python's
/// `jsonschema` (Draft 2020-12), an implementation other than ours: a report that passes is one
/// a user's own validator accepts. scripts/setup installs it; without it the checks are skipped,
/// and fail under `CI=true`.
public enum JSONSchemaCheck {
    public static let schemaDirectory = Fixtures.packageRoot.appendingPathComponent("docs/schemas")

    public static var available: Bool {
        run(["-c", "import jsonschema, referencing"]).status == 0
    }
    public static var shouldRun: Bool { available || Fixtures.isCI }
    public static let skipReason = "python3 with jsonschema is not installed (scripts/setup installs it)"

    /// The validation errors, one per line ("" when `document` is valid). `schema` is a file
    /// name in docs/schemas, e.g. "ccrun.run-1.json"; the others there resolve its `$ref`s.
    public static func errors(in document: String, schema: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("schema-check-\(UUID().uuidString).json")
        try Data(document.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = run(["-c", script, schemaDirectory.path, schema, file.path])
        if r.status != 0 && r.output.isEmpty { return "the validator exited \(r.status) without a word" }
        return r.output
    }

    /// Loads every schema of the folder into one registry (their `$id`s are relative to each
    /// other), validates, and prints each error with where it is in the document.
    static let script = """
    import json, os, sys
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    folder, name, path = sys.argv[1:4]
    schemas = {f: json.load(open(os.path.join(folder, f))) for f in os.listdir(folder) if f.endswith('.json')}
    registry = Registry().with_resources((s['$id'], Resource.from_contents(s)) for s in schemas.values())
    for s in schemas.values(): Draft202012Validator.check_schema(s)
    v = Draft202012Validator(schemas[name], registry=registry)
    errors = sorted(v.iter_errors(json.load(open(path))), key=lambda e: list(e.absolute_path))
    for e in errors: print('/'.join(map(str, e.absolute_path)) or '(document)', ':', e.message)
    sys.exit(1 if errors else 0)
    """

    static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (127, "cannot start python3: \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
