"""Configuration, builders and CLI of the SageMaker batch-inference pipelines.

Importing any module here leaves os.environ as it was (sagemaker_sdk.py says how).
"""
