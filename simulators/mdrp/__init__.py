"""The Grubhub Meal Delivery Routing Problem benchmark: loader, simulator, checker, metrics."""
