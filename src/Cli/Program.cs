using ActorQueue.Cli.Commands;
using Serilog;
using Serilog.Events;

Log.Logger = new LoggerConfiguration()
    .MinimumLevel.Warning()
    .WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose)
    .CreateLogger();

using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupt.Cancel();
};

try
{
    return args switch
    {
        ["demo", ..] => await DemoCommand.RunAsync(Console.Out, interrupt.Token),
        [] or ["--help" or "-h" or "help", ..] => Usage.Print(Console.Out),
        _ => Usage.Fail(Console.Error, $"unknown command '{args[0]}'"),
    };
}
finally
{
    await Log.CloseAndFlushAsync();
}
