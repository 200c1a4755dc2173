"""Who may call and how often: authentication modes, API keys, rate limits, allowed hosts."""
