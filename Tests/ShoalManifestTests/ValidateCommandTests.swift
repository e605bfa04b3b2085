import Foundation
import ShoalTesting
import Testing

/// Runs the real `shoal` binary, as a user would, and checks exactly what it prints.
@Suite struct ValidateCommandTests {
    @Test func theShippedServicesValidate() throws {
        let output = try ProcessRunner.runProduct("shoal", ["validate"], currentDirectory: packageRoot)
        #expect(output.stderr == "")
        #expect(output.stdout == """
            ok  a        services.d/a.yaml        port 8081  backends 0...3  thresholds 2/6
            ok  b        services.d/b.yaml        port 8082  backends 0...2  thresholds 1/3
            ok  c        services.d/c.yaml        port 8083  backends 0...3  thresholds 1/2
            ok  master2  services.d/master2.yaml  port 8090  backends 1...4  thresholds 2/6

            """)
        #expect(output.status == 0)
    }

    @Test func aBadFilePrintsEveryProblemAndFails() throws {
        let directory = try temporaryDirectory([
            "bad.yaml": """
                name: web
                command: shoal-webserver
                port: "8080"
                concurency: 4
                thresholds: {low: 6, high: 2}
                drain_timeout: soon

                """,
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try ProcessRunner.runProduct("shoal", ["validate", "bad.yaml"], currentDirectory: directory)
        #expect(output.stdout == "")
        #expect(output.stderr == """
            bad.yaml:3:7: expected an integer, found string "8080"
            bad.yaml:4:1: unknown key 'concurency' (did you mean 'concurrency'?)
            bad.yaml:5:13: thresholds.low (6) must be less than thresholds.high (2)
            bad.yaml:6:16: bad duration "soon" for drain_timeout: expected a whole number with a unit ms, s, m or h, such as "250ms", "30s" or "2m"

            """)
        #expect(output.status == 1)
    }

    @Test func clashesAcrossFilesAndMissingPaths() throws {
        let directory = try temporaryDirectory([
            "services.d/a.yaml": "name: a\ncommand: x\nport: 8081\n",
            "services.d/b.yaml": "name: b\ncommand: x\nport: 8081\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try ProcessRunner.runProduct("shoal", ["validate", "services.d", "missing.yaml"], currentDirectory: directory)
        #expect(output.stdout == "")
        #expect(output.stderr == """
            missing.yaml: no such file or directory
            services.d/b.yaml:3:7: port 8081 is already used by service 'a' (services.d/a.yaml:3:7)

            """)
        #expect(output.status == 1)
    }

    @Test func anEmptyDirectoryIsAnError() throws {
        let directory = try temporaryDirectory(["services.d/notes.txt": "nothing here"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try ProcessRunner.runProduct("shoal", ["validate"], currentDirectory: directory)
        #expect(output.stdout == "")
        #expect(output.stderr == "services.d: no manifests found (*.yaml, *.yml)\n")
        #expect(output.status == 1)
    }
}
