using ActorQueue.Cli.Commands;
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
        ["run", .. var rest] => await RunCommand.RunAsync(rest, Console.Out, Console.Error, interrupts),
        ["demo", ..] => await DemoCommand.RunAsync(Console.Out, interrupts.StopInput),
        [] or ["--help" or "-h" or "help", ..] => Usage.Print(Console.Out),
        _ => Usage.Fail(Console.Error, $"unknown command '{args[0]}'"),
    };
}
finally
{
    await Log.CloseAndFlushAsync();
}
