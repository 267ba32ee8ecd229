using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The text of the application's objects in the library's own messages, logs, spans and stored reasons: a partition
/// key's or a resource's <c>ToString</c>, an exception's <c>Message</c> (a worker's failure, a serializer's). They are the
/// application's code and may throw; the library must then still give its own answer (a refusal, a timeout, a failure,
/// a dead letter's reason, a span), so a throw reads as a placeholder naming what threw, never as the caller's (or the
/// actor's) exception.
/// </summary>
internal static class UserText
{
    /// <summary><paramref name="value"/>'s <c>ToString</c>, or <c>&lt;{what} ToString threw {exception type}&gt;</c> when it throws.</summary>
    /// <param name="value">The application's object; <c>null</c> reads <c>null</c>.</param>
    /// <param name="what">What it is, for the placeholder (<c>key</c>, <c>resource</c>).</param>
    public static string Of(object? value, string what)
    {
        if (value is null)
        {
            return "null";
        }

        try
        {
            return value.ToString() ?? string.Empty;
        }
        catch (Exception error)
        {
            return $"<{what} ToString threw {error.GetType().Name}>";
        }
    }

    /// <summary>
    /// Logs <paramref name="error"/> (the application's exception, or one carrying it) at Error level without letting
    /// it, or the logger, throw into the limiter: an exception whose <c>ToString</c> (its <c>Message</c>, an inner
    /// exception's) throws is logged as a stand-in naming its type, and a logger that throws loses this line only. A
    /// logger that writes as it is called (Akka's standard-out logger, before the configured ones start) formatted the
    /// cause on the limiter's thread: its exception escaped the turn, or the actor's backstop, and restarted the actor.
    /// </summary>
    public static void ErrorSafely(this ILoggingAdapter log, Exception error, string format, params object[] args)
    {
        try
        {
            log.Error(Printable(error), format, args);
        }
        catch (Exception)
        {
            // Nothing to report it to: the log is what failed.
        }
    }

    /// <summary><paramref name="error"/> itself when its <c>ToString</c> works, else a stand-in naming its type that prints.</summary>
    public static Exception Printable(Exception error)
    {
        try
        {
            _ = error.ToString();
            return error;
        }
        catch (Exception thrown)
        {
            return new InvalidOperationException($"{error.GetType().FullName} (its ToString threw {thrown.GetType().Name}; its message: {MessageOf(error)})");
        }
    }

    /// <summary><paramref name="error"/>'s <c>Message</c>, or <c>&lt;Message threw {exception type}&gt;</c> when it throws.</summary>
    public static string MessageOf(Exception error)
    {
        try
        {
            return error.Message;
        }
        catch (Exception thrown)
        {
            return $"<Message threw {thrown.GetType().Name}>";
        }
    }
}
