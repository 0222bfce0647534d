"""The ``kubernetes`` target: the cloudserve runtime scaled out on a cluster."""
