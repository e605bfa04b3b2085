import ArgumentParser

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A shared-cluster orchestrator: front-ends lease back-ends from one PVM pool.",
        subcommands: [UpCommand.self, DownCommand.self, BrokerCommand.self, FrontendCommand.self, WorkerCommand.self, LeasesCommand.self, PoolCommand.self, ServicesCommand.self, EventsCommand.self, DrainCommand.self, ValidateCommand.self]
    )
}
