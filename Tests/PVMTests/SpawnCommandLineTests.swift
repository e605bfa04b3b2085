@testable import PVM
import Testing

struct SpawnCommandLineTests {
    @Test func withoutEnvironmentTheProgramIsSpawnedItself() throws {
        let request = PVMSpawnRequest(program: "/usr/bin/x", arguments: ["a b", "c"])
        let (program, arguments) = try PVMEngine.commandLine(for: request, "test")
        #expect(program == "/usr/bin/x")
        #expect(arguments == ["a b", "c"])
    }

    @Test func anEnvironmentGoesThroughEnvWithoutAShell() throws {
        let request = PVMSpawnRequest(program: "/usr/bin/x", arguments: ["$HOME", "a;b"],
                                      environment: ["B": "2 3", "A_1": "x=y"])
        let (program, arguments) = try PVMEngine.commandLine(for: request, "test")
        #expect(program == "/usr/bin/env")
        #expect(arguments == ["A_1=x=y", "B=2 3", "/usr/bin/x", "$HOME", "a;b"])
    }

    @Test(arguments: [
        PVMSpawnRequest(program: "relative/x"),
        PVMSpawnRequest(program: "/usr/bin/x", environment: ["A=B": "1"]),
        PVMSpawnRequest(program: "/usr/bin/x", environment: ["-i": "1"]),
        PVMSpawnRequest(program: "/usr/bin/x", environment: ["1A": "1"]),
        PVMSpawnRequest(program: "/usr/bin/x", environment: ["": "1"]),
        PVMSpawnRequest(program: "/opt/a=b/x", environment: ["A": "1"]),
    ])
    func badRequestsAreRejected(request: PVMSpawnRequest) {
        let error = #expect(throws: PVMError.self) { try PVMEngine.commandLine(for: request, "test") }
        #expect(error?.code == .badParam)
    }
}
