using System.Globalization;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Display;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// The console's log lines (stderr): one line per event, <c>[HH:mm:ss LVL] message: reason</c>. The message is cut at
/// its first line and an exception is reduced to its innermost message, without a stack trace: Akka's transport logs
/// a failed TLS handshake as a page of troubleshooting text and stack traces, whose reason fits in that one line.
/// <c>--log FILE</c> keeps every event whole.
/// </summary>
internal sealed class ConsoleLogFormat : ITextFormatter
{
    private readonly MessageTemplateTextFormatter _message = new("{Message:lj}", CultureInfo.InvariantCulture);

    /// <summary>Writes <paramref name="logEvent"/> to <paramref name="output"/> as one line.</summary>
    public void Format(LogEvent logEvent, TextWriter output)
    {
        using var rendered = new StringWriter(CultureInfo.InvariantCulture);
        _message.Format(logEvent, rendered);
        var text = rendered.ToString();
        var line = text.AsSpan(0, text.IndexOfAny(['\r', '\n']) is >= 0 and var end ? end : text.Length).TrimEnd().TrimEnd('[').TrimEnd().ToString();
        if (logEvent.Exception is { } exception && Innermost(exception).Message is { Length: > 0 } reason
            && !line.Contains(reason, StringComparison.Ordinal))
        {
            line += $": {FirstLine(reason)}";
        }

        output.Write(string.Create(CultureInfo.InvariantCulture, $"[{logEvent.Timestamp:HH:mm:ss} {Level(logEvent.Level)}] {line}"));
        output.Write('\n');
    }

    private static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is { } inner)
        {
            exception = inner;
        }

        return exception;
    }

    private static string FirstLine(string text) => text.IndexOfAny(['\r', '\n']) is >= 0 and var end ? text[..end] : text;

    private static string Level(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "VRB",
        LogEventLevel.Debug => "DBG",
        LogEventLevel.Information => "INF",
        LogEventLevel.Warning => "WRN",
        LogEventLevel.Error => "ERR",
        _ => "FTL",
    };
}
