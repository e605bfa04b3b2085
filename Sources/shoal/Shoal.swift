import ArgumentParser

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A shared-cluster orchestrator: front-ends lease back-ends from one PVM pool.",
        subcommands: [FrontendCommand.self, WorkerCommand.self, ValidateCommand.self]
    )
}
