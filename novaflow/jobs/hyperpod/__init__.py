"""SageMaker HyperPod jobs: the job object the recipe hub's chart renders, the cluster's EKS API, the backend."""
