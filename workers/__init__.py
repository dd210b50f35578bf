"""arq workers: ``async def job(ctx, *, ...)`` functions and ``WorkerSettings``."""
