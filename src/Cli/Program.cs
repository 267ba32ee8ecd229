using ActorQueue.Cli.Commands;
using ActorQueue.Cli.Security;
using Serilog;
using Serilog.Events;

Log.Logger = new LoggerConfiguration()
    .MinimumLevel.Warning()
    .WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose)
    .CreateLogger();

using var interrupts = new Interrupts();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupts.Press();
};

try
{
    return args switch
    {
        ["run", .. var rest] => await RunCommand.RunAsync(rest, JobOutput(), Console.Error, interrupts),
        ["node", .. var rest] => await NodeCommand.RunAsync(rest, Console.Error, interrupts),
        ["cert", .. var rest] => CertCommand.Run(rest, Console.Out, Console.Error),
        ["demo", ..] => await DemoCommand.RunAsync(Console.Out, interrupts.StopInput),
        [] or ["--help" or "-h" or "help", ..] => Usage.Print(Console.Out),
        _ => Usage.Fail(Console.Error, $"unknown command '{args[0]}'"),
    };
}
finally
{
    await Log.CloseAndFlushAsync();
}

// Jobs' output owns stdout. Anything else that writes to Console.Out (Akka's fallback console logger, active while
// an actor system starts and stops) goes to stderr instead, so `actorqueue run ... | next-tool` sees only job output.
static TextWriter JobOutput()
{
    var stdout = Console.Out;
    Console.SetOut(Console.Error);
    return stdout;
}
